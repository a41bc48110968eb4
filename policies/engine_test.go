package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newEngine(t testing.TB, opts Options, sources ...Source) *Engine {
	t.Helper()
	e, err := NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	if sources != nil {
		failed, err := e.Load(t.Context(), sources)
		if err != nil {
			t.Fatal(err)
		}
		for name, errs := range failed {
			t.Fatalf("policy %s does not compile: %s", name, FormatErrors(errs))
		}
	}
	return e
}

// simpleInput is a pod in namespace "ns" asking for net1 on ns/a.
func simpleInput() *Input {
	return &Input{
		Operation: "CREATE",
		Pod:       &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}},
		Namespace: Namespace{Name: "ns"},
		Networks:  map[string]NetworkSummary{"ns/a": {Namespace: "ns", Name: "a", Berth: true}},
		Pools:     map[string]PoolSummary{},
		RequestedNetworks: []RequestedNetwork{
			{Network: "ns/a", Interface: "net1"},
		},
	}
}

func TestValidateLocatesErrors(t *testing.T) {
	tests := []struct {
		name       string
		rego       string
		line, col  int32
		wantSubstr string
	}{
		{
			name:       "parse error",
			rego:       "package p\n\ndeny contains msg if {\n  msg := \n}\n",
			line:       5,
			col:        1,
			wantSubstr: "rego_parse_error",
		},
		{
			name:       "http.send is unavailable",
			rego:       "package p\n\ndeny contains \"x\" if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://example.com\"})\n}\n",
			line:       4,
			col:        2,
			wantSubstr: "undefined function http.send",
		},
		{
			name:       "net.lookup_ip_addr is unavailable",
			rego:       "package p\n\ndeny contains \"x\" if {\n\tnet.lookup_ip_addr(\"example.com\")\n}\n",
			line:       4,
			col:        2,
			wantSubstr: "undefined function net.lookup_ip_addr",
		},
		{
			name:       "opa.runtime is unavailable",
			rego:       "package p\n\ndeny contains \"x\" if {\n\topa.runtime().env\n}\n",
			line:       4,
			col:        2,
			wantSubstr: "undefined function opa.runtime",
		},
		{
			name:       "unsafe variable",
			rego:       "package p\n\ndeny contains msg if {\n\tx == 1\n}\n",
			line:       3,
			wantSubstr: "rego_unsafe_var_error",
		},
		{
			name:       "deny as a single value",
			rego:       "package p\n\nx := 1\n\ndeny := \"no\"\n",
			line:       5,
			col:        1,
			wantSubstr: "deny must be a set",
		},
		{
			name:       "attachments as an object",
			rego:       "package p\n\nattachments[\"net1\"] := {\"interface\": \"net1\"}\n",
			line:       3,
			col:        1,
			wantSubstr: "attachments must be a set",
		},
		{
			name:       "default_route as a set",
			rego:       "package p\n\ndefault_route contains \"net1\"\n",
			line:       3,
			col:        1,
			wantSubstr: "default_route must be a single value",
		},
		{
			name:       "reserved package",
			rego:       "package berth.lib.mine\n\ndeny contains \"x\"\n",
			line:       1,
			col:        1,
			wantSubstr: "package berth.lib.mine is reserved",
		},
		{
			name:       "decides nothing",
			rego:       "package p\n\nallow := true\n",
			line:       1,
			col:        1,
			wantSubstr: "defines none of attachments, default_route and deny",
		},
		{
			name:       "Rego v0 syntax",
			rego:       "package p\n\ndeny[msg] { msg := \"x\" }\n",
			line:       3,
			wantSubstr: "rego_parse_error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(tt.rego)
			if len(errs) == 0 {
				t.Fatal("Validate found no error")
			}
			for _, e := range errs {
				if e.Line == tt.line && (tt.col == 0 || e.Column == tt.col) && strings.Contains(e.Message, tt.wantSubstr) {
					return
				}
			}
			t.Errorf("want an error at %d:%d containing %q, got %s", tt.line, tt.col, tt.wantSubstr, FormatErrors(errs))
		})
	}
}

func TestValidateAcceptsShippedPolicies(t *testing.T) {
	sources, err := ShippedSources(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != len(ShippedPolicies()) {
		t.Fatalf("got %d shipped sources, want %d", len(sources), len(ShippedPolicies()))
	}
	for _, s := range sources {
		if errs := Validate(s.Rego); len(errs) > 0 {
			t.Errorf("%s: %s", s.Name, FormatErrors(errs))
		}
	}
}

func TestShippedSourcesDisable(t *testing.T) {
	sources, err := ShippedSources([]string{"spiderpool", "static-ips"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sources {
		if s.Name == ShippedPrefix+"spiderpool" || s.Name == ShippedPrefix+"static-ips" {
			t.Errorf("disabled policy %s is in the set", s.Name)
		}
	}
	if len(sources) != len(ShippedPolicies())-2 {
		t.Errorf("got %d sources, want %d", len(sources), len(ShippedPolicies())-2)
	}
	if _, err := ShippedSources([]string{"spiderpol"}); err == nil || !strings.Contains(err.Error(), `unknown shipped policy "spiderpol"`) {
		t.Errorf("a misspelt name: got %v", err)
	}
}

func TestEvaluateBeforeLoadIsNotReady(t *testing.T) {
	e := newEngine(t, Options{})
	if e.Ready() {
		t.Fatal("ready before any Load")
	}
	if _, err := e.Evaluate(t.Context(), simpleInput()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	if _, err := e.Load(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if !e.Ready() {
		t.Fatal("not ready after loading an empty set")
	}
}

func TestRuntimeErrorNamesThePolicy(t *testing.T) {
	tests := []struct {
		name, rego, want string
	}{
		{
			name: "conflicting values of a complete rule",
			rego: "package p\n\nx := 1\n\nx := 2 if input.operation == \"CREATE\"\n\ndeny contains \"d\" if x == 3\n",
			want: "eval_conflict_error",
		},
		{
			name: "built-in error",
			rego: "package p\n\ndeny contains \"d\" if to_number(input.pod.metadata.name) > 1\n",
			want: "to_number",
		},
		{
			name: "attachment of the wrong shape",
			rego: "package p\n\nattachments contains {\"interface\": \"net1\", \"pools\": [\"x\"]}\n",
			want: `attachments[0]: unknown field "pools"`,
		},
		{
			name: "attachment without interface",
			rego: "package p\n\nattachments contains {\"network\": \"ns/a\"}\n",
			want: "attachments[0]: interface: required",
		},
		{
			name: "attachment with a bad network",
			rego: "package p\n\nattachments contains {\"interface\": \"net1\", \"network\": \"a\"}\n",
			want: `network: "a" is not namespace/name`,
		},
		{
			name: "static address that is not one",
			rego: "package p\n\nattachments contains {\"interface\": \"net1\", \"staticIPs\": [\"10.0.0.1/24\"]}\n",
			want: `staticIPs[0]: "10.0.0.1/24" is not an IP address`,
		},
		{
			name: "deny that is not a string",
			rego: "package p\n\ndeny contains {\"msg\": \"x\"}\n",
			want: "deny[0]",
		},
		{
			name: "default_route that is not an interface",
			rego: "package p\n\ndefault_route := 7\n",
			want: "default_route: 7 is not a string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, Options{}, Source{Name: "broken-one", Priority: 5, Rego: tt.rego}, Source{Name: "fine", Priority: 1, Rego: "package q\n\ndeny contains \"never\" if false\n"})
			_, err := e.Evaluate(t.Context(), simpleInput())
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an *EvalError", err)
			}
			if ee.Policy != "broken-one" || !strings.Contains(err.Error(), "policy broken-one") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to name policy broken-one and contain %q", err, tt.want)
			}
		})
	}
}

func TestPolicyThatDoesNotCompileFailsClosed(t *testing.T) {
	e := newEngine(t, Options{})
	failed, err := e.Load(t.Context(), []Source{
		{Name: "good", Priority: 1, Rego: "package good\n\ndeny contains \"x\" if false\n"},
		{Name: "calls-out", Priority: 2, Rego: "package bad\n\ndeny contains \"x\" if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://10.0.0.1\"})\n}\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	errs := failed["calls-out"]
	if len(errs) == 0 || errs[0].Line != 4 || errs[0].Column != 2 {
		t.Fatalf("want calls-out to fail at 4:2, got %v", failed)
	}
	_, err = e.Evaluate(t.Context(), simpleInput())
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Policy != "calls-out" || !errors.Is(err, ErrNotCompiled) || !strings.Contains(err.Error(), "4:2: rego_type_error: undefined function http.send") {
		t.Fatalf("got %v, want ErrNotCompiled naming calls-out at 4:2", err)
	}
}

func TestTimeBudgetIsEnforced(t *testing.T) {
	// About a hundred million iterations: seconds of work, stopped by the
	// budget long before.
	slow := Source{Name: "slow", Priority: 1, Rego: `package slow

deny contains "never" if {
	n := count([1 | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000); i == j + 20000])
	n > 0
}
`}
	e := newEngine(t, Options{TimeBudget: 50 * time.Millisecond}, slow)
	start := time.Now()
	_, err := e.Evaluate(t.Context(), simpleInput())
	elapsed := time.Since(start)
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Policy != "slow" || !errors.Is(err, ErrTimeBudget) {
		t.Fatalf("got %v, want ErrTimeBudget naming policy slow", err)
	}
	if !strings.Contains(err.Error(), "50ms") {
		t.Errorf("the message should give the budget: %v", err)
	}
	// Generous: the point is that it stopped, not how fast.
	if elapsed > 5*time.Second {
		t.Errorf("evaluation took %s despite a 50ms budget", elapsed)
	}

	// A caller's own deadline is reported as the caller's, not the budget.
	e = newEngine(t, Options{TimeBudget: time.Minute}, slow)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = e.Evaluate(ctx, simpleInput())
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeBudget) {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
}

func TestNegativeBudgetRefused(t *testing.T) {
	if _, err := NewEngine(Options{TimeBudget: -time.Second}); err == nil {
		t.Fatal("a negative budget was accepted")
	}
}

func TestLoadReplacesTheSetAndKeepsUnchangedPolicies(t *testing.T) {
	a1 := Source{Name: "a", Priority: 10, Rego: "package a\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\", \"ipv4\": [\"p1\"]}\n"}
	b := Source{Name: "b", Priority: 20, Rego: "package b\n\ndeny contains \"b says no\" if input.pod.metadata.name == \"blocked\"\n"}
	e := newEngine(t, Options{}, a1, b)
	before := e.set.Load()

	dec, err := e.Evaluate(t.Context(), simpleInput())
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.Attachments[0].IPv4; len(got) != 1 || got[0] != "p1" {
		t.Fatalf("before the change: %+v", dec.Attachments)
	}

	a2 := a1
	a2.Rego = strings.ReplaceAll(a1.Rego, "p1", "p2")
	if _, err := e.Load(t.Context(), []Source{a2, b}); err != nil {
		t.Fatal(err)
	}
	after := e.set.Load()
	if after == before {
		t.Fatal("Load did not swap the set")
	}
	dec, err = e.Evaluate(t.Context(), simpleInput())
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.Attachments[0].IPv4; len(got) != 1 || got[0] != "p2" {
		t.Fatalf("after the change: %+v", dec.Attachments)
	}
	// The unchanged policy kept its prepared query; the changed one did not.
	find := func(s *policySet, name string) *policy {
		for _, p := range s.policies {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("no policy %s", name)
		return nil
	}
	if find(before, "b").deny != find(after, "b").deny {
		t.Error("the unchanged policy b was prepared again")
	}
	if find(before, "a").decide == find(after, "a").decide {
		t.Error("the changed policy a kept its old query")
	}

	// Removing a policy removes its effect.
	if _, err := e.Load(t.Context(), []Source{b}); err != nil {
		t.Fatal(err)
	}
	dec, err = e.Evaluate(t.Context(), simpleInput())
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Attachments) != 0 {
		t.Fatalf("policy a was removed but still decides: %+v", dec.Attachments)
	}

	if _, err := e.Load(t.Context(), []Source{b, b}); err == nil {
		t.Fatal("two policies of one name were accepted")
	}
}

// TestEvaluateDuringLoad swaps sets while evaluations run: each sees one
// whole set (run with -race to check the swap).
func TestEvaluateDuringLoad(t *testing.T) {
	mk := func(pool string) []Source {
		return []Source{
			{Name: "a", Priority: 1, Rego: fmt.Sprintf("package a\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\", \"ipv4\": [%q]}\n", pool)},
			{Name: "b", Priority: 2, Rego: fmt.Sprintf("package b\n\nattachments contains {\"interface\": \"net1\", \"ipv6\": [%q]}\n", pool)},
		}
	}
	e := newEngine(t, Options{}, mk("x")...)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				dec, err := e.Evaluate(t.Context(), simpleInput())
				if err != nil {
					errs <- err
					return
				}
				a := dec.Attachments[0]
				if len(a.IPv4) != 1 || a.IPv4[0] == "" {
					errs <- fmt.Errorf("torn decision %+v", a)
					return
				}
			}
		})
	}
	for i := range 20 {
		if _, err := e.Load(t.Context(), mk(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMergeRule(t *testing.T) {
	type src struct {
		name     string
		priority int32
		rego     string
	}
	pol := func(name string, priority int32, body string) src {
		return src{name, priority, "package " + strings.ReplaceAll(name, "-", "_") + "\n\n" + body + "\n"}
	}
	tests := []struct {
		name         string
		policies     []src
		want         []Attachment
		wantDenials  []Denial
		wantPolicies []string
		// input edits simpleInput for the case.
		input func(*Input)
	}{
		{
			name: "lower priority number wins each field it sets",
			policies: []src{
				pol("admin", 10, `attachments contains {"interface": "net1", "network": "ns/a", "ipv4": ["admin-pool"]}`),
				pol("user", 50, `attachments contains {"interface": "net1", "network": "ns/b", "ipv4": ["user-pool"], "ipv6": ["user-v6"], "mac": "0a:00:00:00:00:01"}`),
			},
			want: []Attachment{{Network: "ns/a", Interface: "net1", IPv4: []string{"admin-pool"}, MAC: "0a:00:00:00:00:01", Policy: "admin"}},
			// ipv6 goes with ipv4: admin decided the pools, so none of user's.
			wantPolicies: []string{"admin", "user"},
		},
		{
			name: "fields left open are filled by later policies",
			policies: []src{
				pol("pools-only", 10, `attachments contains {"interface": "net1", "ipv6": ["v6"]}`),
				pol("network", 20, `attachments contains {"interface": "net1", "network": "ns/a", "staticIPs": ["fd00::5"]}`),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", IPv6: []string{"v6"}, StaticIPs: []string{"fd00::5"}, Policy: "network"}},
			wantPolicies: []string{"pools-only", "network"},
		},
		{
			name: "equal priorities: the name orders them",
			policies: []src{
				pol("zeta", 10, `attachments contains {"interface": "net1", "network": "ns/z"}`),
				pol("alpha", 10, `attachments contains {"interface": "net1", "network": "ns/a"}`),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", Policy: "alpha"}},
			wantPolicies: []string{"alpha"},
		},
		{
			name: "default route from the first policy deciding one",
			policies: []src{
				pol("one", 10, `default_route := "net2"`),
				pol("two", 20, "default_route := \"net1\"\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"net2\", \"network\": \"ns/b\"}"),
			},
			want: []Attachment{
				{Network: "ns/a", Interface: "net1", Policy: "two"},
				{Network: "ns/b", Interface: "net2", DefaultRoute: true, Policy: "two"},
			},
			wantPolicies: []string{"one", "two"},
		},
		{
			name: "default route on a non-Berth interface leaves every attachment without",
			policies: []src{
				pol("one", 10, "default_route := \"eth0\"\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\"}"),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", Policy: "one"}},
			wantPolicies: []string{"one"},
		},
		{
			// Without Berth, eth0 carries the default route; an attachment
			// that becomes eth0 must carry it too, or the pod has none.
			name: "no policy decides the default route: the attachment on eth0 carries it",
			policies: []src{
				pol("underlay", 10, "attachments contains {\"interface\": \"eth0\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/b\"}"),
			},
			want: []Attachment{
				{Network: "ns/b", Interface: "net1", Policy: "underlay"},
				{Network: "ns/a", Interface: "eth0", DefaultRoute: true, Policy: "underlay"},
			},
			wantPolicies: []string{"underlay"},
		},
		{
			name: "a policy deciding another interface keeps the default route off eth0",
			policies: []src{
				pol("route", 5, `default_route := "net1"`),
				pol("underlay", 10, "attachments contains {\"interface\": \"eth0\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/b\"}"),
			},
			want: []Attachment{
				{Network: "ns/b", Interface: "net1", DefaultRoute: true, Policy: "underlay"},
				{Network: "ns/a", Interface: "eth0", Policy: "underlay"},
			},
			wantPolicies: []string{"route", "underlay"},
		},
		{
			// No policy reads the request here; Multus itself moves the
			// default route to the element asking for it.
			name: "a Multus default-route request keeps the default route off eth0",
			policies: []src{
				pol("underlay", 10, `attachments contains {"interface": "eth0", "network": "ns/a"}`),
			},
			input: func(in *Input) {
				in.RequestedNetworks = append(in.RequestedNetworks, RequestedNetwork{Network: "ns/plain", Interface: "net2", DefaultRoute: true})
			},
			want:         []Attachment{{Network: "ns/a", Interface: "eth0", Policy: "underlay"}},
			wantPolicies: []string{"underlay"},
		},
		{
			name: "deny rules see the default route of eth0",
			policies: []src{
				pol("underlay", 10, `attachments contains {"interface": "eth0", "network": "ns/a"}`),
				pol("checker", 5, `deny contains sprintf("%s routes", [a.interface]) if { some a in input.decision.attachments; a.defaultRoute }`),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "eth0", DefaultRoute: true, Policy: "underlay"}},
			wantDenials:  []Denial{{Policy: "checker", Message: "eth0 routes"}},
			wantPolicies: []string{"underlay", "checker"},
		},
		{
			name: "a policy contradicting itself is denied",
			policies: []src{
				pol("twice", 10, "attachments contains {\"interface\": \"net1\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/b\"}"),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", Policy: "twice"}},
			wantDenials:  []Denial{{Policy: "twice", Message: "interface net1: the policy decides network twice, differently"}},
			wantPolicies: []string{"twice"},
		},
		{
			name: "the same fields twice from one policy are fine",
			policies: []src{
				pol("twice", 10, "attachments contains {\"interface\": \"net1\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\", \"ipv4\": []}"),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", IPv4: []string{}, Policy: "twice"}},
			wantPolicies: []string{"twice"},
		},
		{
			name: "an interface no policy attaches is denied",
			policies: []src{
				pol("pools", 10, `attachments contains {"interface": "net7", "ipv4": ["p"]}`),
			},
			want:         []Attachment{},
			wantDenials:  []Denial{{Policy: "pools", Message: "interface net7: addresses are decided for it, but no policy attaches a network to it; is it one of the pod's networks?"}},
			wantPolicies: []string{"pools"},
		},
		{
			name: "order: requested interfaces first, then the others by number",
			policies: []src{
				pol("many", 10, "attachments contains {\"interface\": \"net10\", \"network\": \"ns/c\"}\n\nattachments contains {\"interface\": \"net2\", \"network\": \"ns/b\"}\n\nattachments contains {\"interface\": \"net1\", \"network\": \"ns/a\"}\n\nattachments contains {\"interface\": \"eth0\", \"network\": \"ns/d\"}"),
			},
			want: []Attachment{
				{Network: "ns/a", Interface: "net1", Policy: "many"},
				{Network: "ns/d", Interface: "eth0", DefaultRoute: true, Policy: "many"},
				{Network: "ns/b", Interface: "net2", Policy: "many"},
				{Network: "ns/c", Interface: "net10", Policy: "many"},
			},
			wantPolicies: []string{"many"},
		},
		{
			name: "deny rules see the merged decision",
			policies: []src{
				pol("decider", 10, `attachments contains {"interface": "net1", "network": "ns/a", "ipv4": ["p"]}`),
				pol("checker", 5, `deny contains sprintf("%s uses %s from %s", [a.interface, a.ipv4[0], a.policy]) if some a in input.decision.attachments`),
			},
			want:         []Attachment{{Network: "ns/a", Interface: "net1", IPv4: []string{"p"}, Policy: "decider"}},
			wantDenials:  []Denial{{Policy: "checker", Message: "net1 uses p from decider"}},
			wantPolicies: []string{"decider", "checker"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sources []Source
			for _, p := range tt.policies {
				sources = append(sources, Source{Name: p.name, Priority: p.priority, Rego: p.rego})
			}
			e := newEngine(t, Options{}, sources...)
			in := simpleInput()
			if tt.input != nil {
				tt.input(in)
			}
			dec, err := e.Evaluate(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprintf("%+v", dec.Attachments), fmt.Sprintf("%+v", tt.want); got != want {
				t.Errorf("attachments\n got %s\nwant %s", got, want)
			}
			if got, want := fmt.Sprintf("%+v", dec.Denials), fmt.Sprintf("%+v", tt.wantDenials); got != want {
				t.Errorf("denials\n got %s\nwant %s", got, want)
			}
			if got, want := fmt.Sprint(dec.Policies), fmt.Sprint(tt.wantPolicies); got != want {
				t.Errorf("policies: got %s, want %s", got, want)
			}
		})
	}
}

// TestReadsDecision: deny rules that may read input.decision wait for the
// merge; the others are evaluated with the deciding rules, in one query.
func TestReadsDecision(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`deny contains "x" if input.pod.metadata.name == "a"`, false},
		{`deny contains "x" if count(input.decision.attachments) > 2`, true},
		{`deny contains "x" if input["decision"]`, true},
		{`deny contains "x" if { some k; input[k] == 1 }`, true},
		{`deny contains "x" if { i := input; i.decision }`, true},
		{`deny contains "x" if { d := "decision"; input[d] }`, true},
	}
	for _, tt := range tests {
		mod, err := parse("t.rego", "package t\n\n"+tt.body+"\n")
		if err != nil {
			t.Fatal(err)
		}
		if got := readsDecision(mod); got != tt.want {
			t.Errorf("%s: readsDecision = %v, want %v", tt.body, got, tt.want)
		}
	}
}
