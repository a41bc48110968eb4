package policies

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestShippedRego runs the *_test.rego files of the shipped policies with
// OPA's test runner, under the engine's capabilities (so a test proves the
// policy needs no network built-in) and with built-in errors raised, as the
// engine evaluates them. Each Rego test is a Go subtest.
func TestShippedRego(t *testing.T) {
	files, err := shippedFiles()
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]*ast.Module{}
	tests := 0
	for _, f := range files {
		data, err := shippedFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := parse(f, string(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		mods[f] = mod
		if strings.HasSuffix(f, "_test.rego") {
			tests++
		}
	}
	if tests == 0 {
		t.Fatal("no *_test.rego file is embedded")
	}
	comp := ast.NewCompiler().WithCapabilities(Capabilities()).WithEnablePrintStatements(true)
	runner := tester.NewRunner().SetCompiler(comp).SetModules(mods).RaiseBuiltinErrors(true).CapturePrintOutput(true)
	ch, err := runner.RunTests(t.Context(), nil)
	if err != nil {
		t.Fatalf("compiling the shipped policies with their tests: %v", err)
	}
	ran := 0
	for r := range ch {
		ran++
		t.Run(strings.TrimPrefix(r.Package, "data.")+"/"+r.Name, func(t *testing.T) {
			switch {
			case r.Error != nil:
				t.Errorf("%s: error: %v\n%s", r.Location, r.Error, r.Output)
			case r.Fail:
				t.Errorf("%s: failed at %v\nprinted: %s", r.Location, r.FailedAt, r.Output)
			case r.Skip:
				t.Skipf("%s: marked todo_", r.Location)
			}
		})
	}
	if ran == 0 {
		t.Fatal("the Rego test runner ran no test")
	}
}

// TestShippedRegoFormatted keeps the shipped Rego as `opa fmt` writes it.
func TestShippedRegoFormatted(t *testing.T) {
	files, err := shippedFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		src, err := shippedFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := format.SourceWithOpts(f, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if string(out) != string(src) {
			t.Errorf("%s is not formatted as opa fmt would", f)
		}
	}
}
