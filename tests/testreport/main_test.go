package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK","Elapsed":0.1}`,
		`{"Action":"run","Package":"p/a","Test":"TestIPvlan"}`,
		`{"Action":"output","Package":"p/a","Test":"TestIPvlan","Output":"=== RUN   TestIPvlan\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestIPvlan","Output":"    x_test.go:9: this kernel has no ipvlan links\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestIPvlan","Output":"--- SKIP: TestIPvlan (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/a","Test":"TestIPvlan"}`,
		`{"Action":"run","Package":"p/a","Test":"TestBad/sub"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad/sub"}`,
		`{"Action":"output","Package":"p/a","Test":"TestBad","Output":"    x_test.go:12: got 1, want 2\n"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad"}`,
		`{"Action":"fail","Package":"p/a","Elapsed":1.5}`,
		`{"Action":"output","Package":"p/b","Output":"FAIL: starting control plane: etcd missing\n"}`,
		`{"Action":"fail","Package":"p/b","Elapsed":0.2}`,
		`{"Action":"pass","Package":"p/c","Test":"TestC"}`,
		`{"Action":"pass","Package":"p/c","Elapsed":3}`,
		`# p/d`,
		`{"ImportPath":"p/e","Action":"build-output","Output":"p/e/x.go:3:1: syntax error\n"}`,
		`{"ImportPath":"p/e","Action":"build-fail"}`,
	}, "\n")
	var out strings.Builder
	code, err := report(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	got := out.String()
	// Columns are aligned with spaces; compare rows word by word.
	rows := map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		rows[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{"p/a 3 1 1 1 1.5 FAIL", "p/b 0 0 0 0 0.2 FAIL", "p/c 1 1 0 0 3.0", "total 4 2 1 1"} {
		if !rows[want] {
			t.Errorf("report lacks the row %q:\n%s", want, got)
		}
	}
	for _, want := range []string{
		"p/a TestIPvlan: x_test.go:9: this kernel has no ipvlan links",
		"--- FAIL p/a TestBad\n    x_test.go:12: got 1, want 2",
		"--- FAIL package p/b\nFAIL: starting control plane: etcd missing",
		"# p/d",
		"p/e/x.go:3:1: syntax error",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
