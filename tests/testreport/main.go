// Command testreport reads `go test -json` on stdin and prints, per package,
// how many tests ran, passed, were skipped and failed, then every skipped
// test with its reason and the full output of every failed one. `make test`
// pipes into it so a CI log shows that the integration tests ran, not only
// that packages said "ok". It exits non-zero when anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build events
	Test       string
	Elapsed    float64
	Output     string
}

type pkgResult struct {
	pass, skip, fail int
	elapsed          float64
	failed           bool // the package itself (build error, TestMain)
	output           strings.Builder
}

type testKey struct{ pkg, test string }

func main() {
	code, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func report(in io.Reader, out io.Writer) (int, error) {
	pkgs := map[string]*pkgResult{}
	outputs := map[testKey]*strings.Builder{}
	var skipped, failed []testKey
	buildFailed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Not test2json: a build error printed by go itself.
			fmt.Fprintln(out, string(line))
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
			continue
		case "build-fail":
			buildFailed = true
			continue
		}
		p := pkgs[e.Package]
		if p == nil {
			p = &pkgResult{}
			pkgs[e.Package] = p
		}
		if e.Test == "" {
			switch e.Action {
			case "output":
				p.output.WriteString(e.Output)
			case "fail":
				p.failed = true
				p.elapsed = e.Elapsed
			case "pass", "skip":
				p.elapsed = e.Elapsed
			}
			continue
		}
		k := testKey{e.Package, e.Test}
		switch e.Action {
		case "output":
			b := outputs[k]
			if b == nil {
				b = &strings.Builder{}
				outputs[k] = b
			}
			b.WriteString(e.Output)
		case "pass", "skip", "fail":
			if strings.Contains(e.Test, "/") {
				// Subtests are counted through their parents; a skipped or
				// failed subtest is still listed.
				if e.Action == "skip" {
					skipped = append(skipped, k)
				}
				continue
			}
			switch e.Action {
			case "pass":
				p.pass++
			case "skip":
				p.skip++
				skipped = append(skipped, k)
			case "fail":
				p.fail++
				failed = append(failed, k)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 2, fmt.Errorf("reading go test -json: %w", err)
	}

	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tTESTS\tPASS\tSKIP\tFAIL\tSECONDS\t")
	var total pkgResult
	code := 0
	if buildFailed {
		code = 1
	}
	for _, n := range names {
		p := pkgs[n]
		status := ""
		if p.failed || p.fail > 0 {
			status = "  FAIL"
			code = 1
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%s\n", n, p.pass+p.skip+p.fail, p.pass, p.skip, p.fail, p.elapsed, status)
		total.pass, total.skip, total.fail = total.pass+p.pass, total.skip+p.skip, total.fail+p.fail
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\t\n", total.pass+total.skip+total.fail, total.pass, total.skip, total.fail)
	if err := tw.Flush(); err != nil {
		return 2, err
	}
	if len(skipped) > 0 {
		fmt.Fprintf(out, "\nskipped (%d):\n", len(skipped))
		for _, k := range skipped {
			fmt.Fprintf(out, "  %s %s: %s\n", k.pkg, k.test, skipReason(outputs[k]))
		}
	}
	for _, k := range failed {
		fmt.Fprintf(out, "\n--- FAIL %s %s\n%s", k.pkg, k.test, text(outputs[k]))
	}
	for _, n := range names {
		if p := pkgs[n]; p.failed && p.fail == 0 {
			fmt.Fprintf(out, "\n--- FAIL package %s\n%s", n, p.output.String())
		}
	}
	return code, nil
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// skipReason is the message of t.Skip: the output lines after the RUN line,
// without the "--- SKIP" line.
func skipReason(b *strings.Builder) string {
	var parts []string
	for _, l := range strings.Split(text(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}
