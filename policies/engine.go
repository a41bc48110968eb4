package policies

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// DefaultTimeBudget bounds one Evaluate when Options leave it unset: well
// under the webhook's 10 s timeout, and hundreds of times what the shipped
// policies need (about 2 ms, docs/benchmarks.md), so only a runaway policy
// hits it, not a node starved of CPU (250 ms did, under load).
const DefaultTimeBudget = time.Second

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotReady: no policy set has been loaded yet. The webhook must
	// fail closed rather than admit pods without the administrator's
	// policies.
	ErrNotReady = errors.New("attachment policies not loaded yet")
	// ErrTimeBudget: an evaluation ran out of its time budget.
	ErrTimeBudget = errors.New("policy evaluation exceeded its time budget")
	// ErrNotCompiled: an enabled policy does not compile.
	ErrNotCompiled = errors.New("policy does not compile")
)

// EvalError is a failure of one policy: a runtime error, the time budget,
// output of the wrong shape, or a policy that does not compile. The webhook
// fails the admission closed with its message, which names the policy.
type EvalError struct {
	Policy string
	Err    error
}

func (e *EvalError) Error() string { return fmt.Sprintf("policy %s: %v", e.Policy, e.Err) }
func (e *EvalError) Unwrap() error { return e.Err }

// Source is one policy to evaluate: an AttachmentPolicy or a shipped one.
type Source struct {
	// Name is the AttachmentPolicy's name, or ShippedPrefix+name.
	Name string
	// Priority: lower values are evaluated first and win (DESIGN.md).
	Priority int32
	Rego     string
}

// Options configure an Engine.
type Options struct {
	// TimeBudget bounds one Evaluate; zero means DefaultTimeBudget.
	TimeBudget time.Duration
}

// Engine evaluates the current policy set. Load replaces the set; Evaluate
// may run concurrently with Load and with itself.
type Engine struct {
	budget   time.Duration
	compiler *compiler
	// set is swapped whole by Load, so an evaluation sees one policy set
	// from start to end.
	set atomic.Pointer[policySet]
	// loadMu serialises Load, which reuses the prepared queries of the
	// current set for unchanged policies.
	loadMu sync.Mutex
}

var _ Evaluator = &Engine{}

type policySet struct {
	policies []*policy // by priority, then name
}

// policy is one compiled, prepared policy of a set.
type policy struct {
	Source
	digest [sha256.Size]byte
	// errs is set when the policy does not compile; it then fails every
	// evaluation (fail closed: it may have been a denying policy).
	errs   []berthv1.PolicyError
	decide *rego.PreparedEvalQuery
	deny   *rego.PreparedEvalQuery
}

// NewEngine returns an engine with no policy set: Evaluate fails with
// ErrNotReady until the first Load.
func NewEngine(opts Options) (*Engine, error) {
	if opts.TimeBudget < 0 {
		return nil, fmt.Errorf("policy time budget %s: must not be negative", opts.TimeBudget)
	}
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	budget := opts.TimeBudget
	if budget == 0 {
		budget = DefaultTimeBudget
	}
	return &Engine{budget: budget, compiler: c}, nil
}

// Ready reports whether a policy set has been loaded.
func (e *Engine) Ready() bool { return e.set.Load() != nil }

// Load compiles and prepares sources and makes them the current set in one
// atomic swap. Policies unchanged since the previous Load keep their
// prepared queries. A policy that does not compile is kept in the set and
// fails evaluations; its errors are returned in the map, by policy name.
// An error means nothing was swapped.
func (e *Engine) Load(ctx context.Context, sources []Source) (map[string][]berthv1.PolicyError, error) {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	previous := map[string]*policy{}
	if cur := e.set.Load(); cur != nil {
		for _, p := range cur.policies {
			previous[p.Name] = p
		}
	}
	set := &policySet{}
	failed := map[string][]berthv1.PolicyError{}
	seen := map[string]bool{}
	for _, src := range sources {
		if seen[src.Name] {
			return nil, fmt.Errorf("two policies are named %q", src.Name)
		}
		seen[src.Name] = true
		digest := sha256.Sum256([]byte(src.Rego))
		if old, ok := previous[src.Name]; ok && old.digest == digest {
			p := *old
			p.Priority = src.Priority
			set.policies = append(set.policies, &p)
			if len(p.errs) > 0 {
				failed[p.Name] = p.errs
			}
			continue
		}
		p := &policy{Source: src, digest: digest}
		mod, errs := e.compiler.compile(src.Name+".rego", src.Rego)
		if len(errs) > 0 {
			p.errs = errs
			failed[p.Name] = errs
		} else {
			var err error
			if p.decide, p.deny, err = mod.prepare(ctx); err != nil {
				return nil, fmt.Errorf("policy %s: %w", src.Name, err)
			}
		}
		set.policies = append(set.policies, p)
	}
	slices.SortFunc(set.policies, func(a, b *policy) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
	e.set.Store(set)
	return failed, nil
}

// Evaluate runs every policy of the current set on in: first the deciding
// rules, merged by priority, then the deny rules, which see the merged
// decision as input.decision.
func (e *Engine) Evaluate(ctx context.Context, in *Input) (*Decision, error) {
	set := e.set.Load()
	if set == nil {
		return nil, ErrNotReady
	}
	for _, p := range set.policies {
		if len(p.errs) > 0 {
			return nil, &EvalError{Policy: p.Name, Err: fmt.Errorf("%w: %s", ErrNotCompiled, FormatErrors(p.errs))}
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, e.budget)
	defer cancel()

	input, err := toValue(in)
	if err != nil {
		return nil, fmt.Errorf("encoding the policy input: %w", err)
	}
	m := newMerger(in)
	for _, p := range set.policies {
		if p.decide == nil {
			continue
		}
		rs, err := p.decide.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			return nil, e.evalError(parent, ctx, p.Name, err)
		}
		out, err := decideOutput(rs)
		if err != nil {
			return nil, &EvalError{Policy: p.Name, Err: err}
		}
		m.add(p.Name, out)
	}
	dec := m.decision()

	// The deny rules see the merged decision.
	decValue, err := toValue(dec)
	if err != nil {
		return nil, fmt.Errorf("encoding the decision for the deny rules: %w", err)
	}
	obj, ok := input.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("the policy input is not an object")
	}
	withDecision := ast.NewObject()
	obj.Foreach(func(k, v *ast.Term) { withDecision.Insert(k, v) })
	withDecision.Insert(ast.StringTerm("decision"), ast.NewTerm(decValue))
	contributed := map[string]bool{}
	for _, name := range dec.Policies {
		contributed[name] = true
	}
	for _, p := range set.policies {
		if p.deny == nil {
			continue
		}
		rs, err := p.deny.Eval(ctx, rego.EvalParsedInput(withDecision))
		if err != nil {
			return nil, e.evalError(parent, ctx, p.Name, err)
		}
		msgs, err := denyOutput(rs)
		if err != nil {
			return nil, &EvalError{Policy: p.Name, Err: err}
		}
		for _, msg := range msgs {
			dec.Denials = append(dec.Denials, Denial{Policy: p.Name, Message: msg})
		}
		if len(msgs) > 0 && !contributed[p.Name] {
			contributed[p.Name] = true
			dec.Policies = append(dec.Policies, p.Name)
		}
	}
	return dec, nil
}

// evalError names the policy and tells a spent time budget from other
// failures.
func (e *Engine) evalError(parent, ctx context.Context, name string, err error) error {
	switch {
	case parent.Err() != nil:
		// The caller gave up (its own deadline, a cancelled request).
		return &EvalError{Policy: name, Err: fmt.Errorf("evaluation stopped: %w", parent.Err())}
	case ctx.Err() != nil:
		return &EvalError{Policy: name, Err: fmt.Errorf("%w of %s", ErrTimeBudget, e.budget)}
	}
	return &EvalError{Policy: name, Err: err}
}

// toValue converts v to the AST value the prepared queries take, once per
// evaluation instead of once per policy.
func toValue(v any) (ast.Value, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return ast.ValueFromReader(bytes.NewReader(data))
}
