package policies

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/util/validation/field"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// The rules a policy module may define (DESIGN.md, "Policies").
const (
	ruleAttachments  = "attachments"
	ruleDefaultRoute = "default_route"
	ruleDeny         = "deny"
)

// libPackage is the package of the shipped helper library compiled with
// every policy; policies may import it but not declare it.
const libPackage = "data.berth.lib"

// unavailableBuiltins reach outside the process (the network, the
// environment): a policy deciding admissions must depend on its input only.
func unavailableBuiltins() []string {
	return []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}
}

// Capabilities are those of this OPA version without the built-ins policies
// may not call. The compiler refuses a policy calling one of them as an
// undefined function, with its line and column.
func Capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	blocked := unavailableBuiltins()
	c.Builtins = slices.DeleteFunc(c.Builtins, func(b *ast.Builtin) bool {
		return slices.Contains(blocked, b.Name)
	})
	return c
}

// compiler compiles policies against the shipped library under the
// restricted capabilities. It holds no per-policy state.
type compiler struct {
	caps *ast.Capabilities
	lib  *ast.Module
}

func newCompiler() (*compiler, error) {
	lib, err := parse(libFile, shippedLib())
	if err != nil {
		return nil, fmt.Errorf("parsing the shipped policy library: %w", err)
	}
	return &compiler{caps: Capabilities(), lib: lib}, nil
}

func parse(filename, source string) (*ast.Module, error) {
	return ast.ParseModuleWithOpts(filename, source, ast.ParserOptions{RegoVersion: ast.RegoV1})
}

// Validate compiles a policy's Rego source as the engine would and returns
// its errors, each with the line and column in source; none means it
// compiles and keeps the module contract. The validating webhook and the
// status controller call it.
func Validate(source string) []berthv1.PolicyError {
	c, err := newCompiler()
	if err != nil {
		return []berthv1.PolicyError{{Message: err.Error()}}
	}
	_, errs := c.compile("policy.rego", source)
	return errs
}

// module is a compiled policy module: the compiler holding it and the path
// of its package.
type module struct {
	compiler *ast.Compiler
	pkg      ast.Ref
	// has tells which contract rules the module defines.
	has map[string]bool
	// readsDecision: the module may read input.decision, so its deny rules
	// must wait for the merged decision. Others are evaluated in one query.
	readsDecision bool
}

// compile parses and compiles one policy. Errors are located in source.
func (c *compiler) compile(filename, source string) (*module, []berthv1.PolicyError) {
	mod, err := parse(filename, source)
	if err != nil {
		return nil, located(err)
	}
	m := &module{pkg: mod.Package.Path, has: map[string]bool{}}
	if errs := checkContract(mod, m.has); len(errs) > 0 {
		return nil, errs
	}
	comp := ast.NewCompiler().WithCapabilities(c.caps)
	comp.Compile(map[string]*ast.Module{libFile: c.lib, filename: mod})
	if comp.Failed() {
		return nil, located(comp.Errors)
	}
	m.compiler = comp
	m.readsDecision = readsDecision(mod)
	return m, nil
}

// readsDecision tells whether a module may read input.decision: a ref to it,
// or to input as a whole (which could be passed on and read later).
func readsDecision(mod *ast.Module) bool {
	found := false
	decision := ast.MustParseRef("input.decision")
	ast.WalkRefs(mod, func(r ast.Ref) bool {
		if r.HasPrefix(decision) || (r.Equal(ast.InputRootRef)) {
			found = true
		}
		if len(r) >= 2 && r[0].Equal(ast.InputRootDocument) && !ast.IsConstant(r[1].Value) {
			found = true // input[x]: any key, decision included
		}
		return found
	})
	return found
}

// checkContract enforces the shapes of DESIGN.md: attachments and deny are
// multi-value rules (`contains`), default_route a single value, and the
// module defines at least one of them outside the reserved library package.
func checkContract(mod *ast.Module, has map[string]bool) []berthv1.PolicyError {
	var errs []berthv1.PolicyError
	add := func(loc *ast.Location, format string, args ...any) {
		e := berthv1.PolicyError{Message: fmt.Sprintf(format, args...)}
		if loc != nil {
			e.Line, e.Column = int32(loc.Row), int32(loc.Col)
		}
		errs = append(errs, e)
	}
	if pkg := mod.Package.Path.String(); pkg == libPackage || strings.HasPrefix(pkg, libPackage+".") || strings.HasPrefix(pkg, libPackage+"[") {
		add(mod.Package.Location, "package %s is reserved for the shipped library", strings.TrimPrefix(pkg, "data."))
	}
	for _, r := range mod.Rules {
		ref := r.Head.Ref()
		name, ok := ref[0].Value.(ast.Var)
		if !ok {
			continue
		}
		switch string(name) {
		case ruleAttachments, ruleDeny:
			if len(ref) != 1 || r.Head.RuleKind() != ast.MultiValue || len(r.Head.Args) > 0 {
				add(r.Location, "%s must be a set: write `%s contains ... if { ... }`", name, name)
				continue
			}
		case ruleDefaultRoute:
			if len(ref) != 1 || r.Head.RuleKind() != ast.SingleValue || len(r.Head.Args) > 0 {
				add(r.Location, "%s must be a single value, the name of an interface: write `%s := \"net1\" if { ... }`", name, name)
				continue
			}
		default:
			continue
		}
		has[string(name)] = true
	}
	if len(errs) == 0 && len(has) == 0 {
		add(mod.Package.Location, "the policy defines none of %s, %s and %s, so it can decide nothing", ruleAttachments, ruleDefaultRoute, ruleDeny)
	}
	return errs
}

// located turns parse and compile errors into located policy errors.
func located(err error) []berthv1.PolicyError {
	var astErrs ast.Errors
	if !errors.As(err, &astErrs) {
		return []berthv1.PolicyError{{Message: err.Error()}}
	}
	out := make([]berthv1.PolicyError, 0, len(astErrs))
	for _, e := range astErrs {
		pe := berthv1.PolicyError{Message: e.Message}
		if e.Code != "" {
			pe.Message = e.Code + ": " + e.Message
		}
		if e.Location != nil {
			pe.Line, pe.Column = int32(e.Location.Row), int32(e.Location.Col)
		}
		out = append(out, pe)
	}
	return out
}

// prepare builds the prepared queries of a compiled module. decide returns
// the deciding rules and, when the module does not read input.decision, its
// deny rules too; deny is the query run after the merge, for modules that do.
// Either is nil when there is nothing for it to do.
func (m *module) prepare(ctx context.Context) (decide, deny *rego.PreparedEvalQuery, err error) {
	pkg := m.pkg.String()
	opts := func(query string) []func(*rego.Rego) {
		return []func(*rego.Rego){
			rego.Compiler(m.compiler),
			rego.Query(query),
			// A built-in's error (a bad regex, a malformed JSON string) is
			// an error of the policy, not a silently undefined rule that
			// might skip a denial.
			rego.StrictBuiltinErrors(true),
			rego.SetRegoVersion(ast.RegoV1),
		}
	}
	// Comprehensions make an undefined rule an empty list instead of an
	// undefined query.
	var parts []string
	if m.has[ruleAttachments] || m.has[ruleDefaultRoute] {
		parts = append(parts, fmt.Sprintf("attachments := [a | some a in %s.%s]; default_route := [r | r := %s.%s]",
			pkg, ruleAttachments, pkg, ruleDefaultRoute))
	}
	denyQuery := fmt.Sprintf("deny := [d | some d in %s.%s]", pkg, ruleDeny)
	if m.has[ruleDeny] && !m.readsDecision {
		parts = append(parts, denyQuery)
	}
	if len(parts) > 0 {
		pq, err := rego.New(opts(strings.Join(parts, "; "))...).PrepareForEval(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("preparing the query of the policy's rules: %w", err)
		}
		decide = &pq
	}
	if m.has[ruleDeny] && m.readsDecision {
		pq, err := rego.New(opts(denyQuery)...).PrepareForEval(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("preparing the query of %s: %w", ruleDeny, err)
		}
		deny = &pq
	}
	return decide, deny, nil
}

// FormatErrors renders policy errors on one line each, "line:column: message".
func FormatErrors(errs []berthv1.PolicyError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

// ValidatePolicy is the check of the validating webhook for an
// AttachmentPolicy: one field error on spec.rego per compile error, each
// giving its line and column. An empty list admits the object.
func ValidatePolicy(p *berthv1.AttachmentPolicy) field.ErrorList {
	var out field.ErrorList
	path := field.NewPath("spec", "rego")
	for _, e := range Validate(p.Spec.Rego) {
		msg := e.Message
		if e.Line > 0 {
			msg = fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
		}
		out = append(out, field.Invalid(path, "(Rego source)", msg))
	}
	return out
}
