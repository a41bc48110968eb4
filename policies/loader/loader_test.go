package loader

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
	"github.com/berth-io/berth/tests/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.Main(m, controlplane.Options{}, &cp)) }

// startManager runs a manager with the loader and the status controller
// until the test ends, and returns the engine once it is ready.
func startManager(t *testing.T, opts Options) *policies.Engine {
	t.Helper()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each test has its own manager with the same controller names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.NewEngine(policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, engine, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	poll(t, "the engine to be ready", func(context.Context) (bool, error) { return engine.Ready(), nil })
	return engine
}

func poll(t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func input(labels map[string]string, annotations map[string]string) *policies.Input {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: labels, Annotations: annotations}}
	in := &policies.Input{Operation: "CREATE", Pod: pod, Namespace: policies.Namespace{Name: "default"}}
	return in
}

func denials(dec *policies.Decision) []string {
	var out []string
	for _, d := range dec.Denials {
		out = append(out, d.Policy+": "+d.Message)
	}
	return out
}

func waitStatus(t *testing.T, name string, check func(*berthv1.AttachmentPolicy) bool) *berthv1.AttachmentPolicy {
	t.Helper()
	var p berthv1.AttachmentPolicy
	poll(t, "the status of "+name, func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
			return false, err
		}
		return p.Status.ObservedGeneration == p.Generation && check(&p), nil
	})
	return &p
}

// update changes the policy named name, retrying on the conflicts the
// status controller's writes cause.
func update(t *testing.T, name string, mutate func(*berthv1.AttachmentPolicy)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p berthv1.AttachmentPolicy
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: name}, &p); err != nil {
			return err
		}
		mutate(&p)
		return cp.Client.Update(t.Context(), &p)
	})
	if err != nil {
		t.Fatalf("updating attachmentpolicy %s: %v", name, err)
	}
}

const denyBlocked = `package tenant.guard

deny contains "pods labelled blocked are not admitted" if input.pod.metadata.labels.blocked == "true"
`

const callsOut = `package tenant.callsout

deny contains "never" if {
	http.send({"method": "GET", "url": "http://10.0.0.1"}).status_code == 200
}
`

// TestLoaderAndStatus follows AttachmentPolicies through their life on a
// real API server: the engine of the loader evaluates exactly the enabled
// ones, and the status controller reports each compile result with the
// error's line and column.
func TestLoaderAndStatus(t *testing.T) {
	engine := startManager(t, Options{Status: true})
	ctx := controlplane.Context(t, 2*time.Minute)
	blocked := input(map[string]string{"blocked": "true"}, nil)

	evaluate := func(in *policies.Input) (*policies.Decision, error) { return engine.Evaluate(ctx, in) }
	waitDenials := func(what string, in *policies.Input, want string) {
		t.Helper()
		poll(t, what, func(context.Context) (bool, error) {
			dec, err := evaluate(in)
			if err != nil {
				return false, nil
			}
			got := strings.Join(denials(dec), "|")
			return got == want, nil
		})
	}

	// The shipped policies are loaded with no AttachmentPolicy at all.
	dec, err := evaluate(input(nil, map[string]string{"berth.io/default-route-nic": "bad name"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(denials(dec), "|"); got != `berth/annotations: berth.io/default-route-nic: "bad name" is not a valid interface name` {
		t.Fatalf("shipped policies: got denials %q", got)
	}

	// A new policy is compiled, reported and evaluated.
	guard := &berthv1.AttachmentPolicy{ObjectMeta: metav1.ObjectMeta{Name: "guard"}, Spec: berthv1.AttachmentPolicySpec{Rego: denyBlocked, Priority: 10}}
	if err := cp.Client.Create(ctx, guard); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), guard) })
	p := waitStatus(t, "guard", func(p *berthv1.AttachmentPolicy) bool { return p.Status.Phase == berthv1.PolicyCompiled })
	if len(p.Status.Errors) != 0 || len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("status of a compiled policy: %+v", p.Status)
	}
	waitDenials("guard to deny", blocked, "guard: pods labelled blocked are not admitted")

	// A policy calling out does not compile: status Error at its line and
	// column, and admissions fail closed, naming it.
	broken := &berthv1.AttachmentPolicy{ObjectMeta: metav1.ObjectMeta{Name: "calls-out"}, Spec: berthv1.AttachmentPolicySpec{Rego: callsOut}}
	if err := cp.Client.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), broken) })
	p = waitStatus(t, "calls-out", func(p *berthv1.AttachmentPolicy) bool { return p.Status.Phase == berthv1.PolicyFailed })
	if len(p.Status.Errors) == 0 || p.Status.Errors[0].Line != 4 || p.Status.Errors[0].Column != 2 || !strings.Contains(p.Status.Errors[0].Message, "undefined function http.send") {
		t.Errorf("status errors: %+v", p.Status.Errors)
	}
	if c := p.Status.Conditions; len(c) != 1 || c[0].Status != metav1.ConditionFalse || c[0].Reason != "CompileError" || !strings.Contains(c[0].Message, "4:2:") {
		t.Errorf("condition: %+v", c)
	}
	poll(t, "evaluations to fail closed", func(context.Context) (bool, error) {
		_, err := evaluate(blocked)
		var ee *policies.EvalError
		return errors.As(err, &ee) && ee.Policy == "calls-out" && errors.Is(err, policies.ErrNotCompiled), nil
	})

	// Fixing it brings evaluations back, and the status follows.
	update(t, "calls-out", func(p *berthv1.AttachmentPolicy) {
		p.Spec.Rego = strings.Replace(callsOut, `http.send({"method": "GET", "url": "http://10.0.0.1"}).status_code == 200`, `input.pod.metadata.name == "never-this-one"`, 1)
	})
	waitStatus(t, "calls-out", func(p *berthv1.AttachmentPolicy) bool {
		return p.Status.Phase == berthv1.PolicyCompiled && len(p.Status.Errors) == 0
	})
	waitDenials("the fixed policy to evaluate", blocked, "guard: pods labelled blocked are not admitted")

	// A disabled policy is not evaluated, and enabling it again is.
	update(t, "guard", func(p *berthv1.AttachmentPolicy) { p.Spec.Enabled = ptr.To(false) })
	waitDenials("the disabled policy to stop", blocked, "")
	update(t, "guard", func(p *berthv1.AttachmentPolicy) { p.Spec.Enabled = ptr.To(true) })
	waitDenials("the enabled policy to come back", blocked, "guard: pods labelled blocked are not admitted")

	// A deleted policy is gone.
	if err := cp.Client.Delete(ctx, guard); err != nil {
		t.Fatal(err)
	}
	waitDenials("the deleted policy to go", blocked, "")
}

// TestDisabledShippedPolicy leaves a shipped policy out by name.
func TestDisabledShippedPolicy(t *testing.T) {
	engine := startManager(t, Options{DisabledShipped: []string{"annotations"}})
	dec, err := engine.Evaluate(t.Context(), input(nil, map[string]string{"berth.io/default-route-nic": "bad name"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Denials) != 0 {
		t.Fatalf("the disabled policy still denies: %v", denials(dec))
	}
}

func TestSetupRefusesUnknownShippedPolicy(t *testing.T) {
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.NewEngine(policies.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, engine, Options{DisabledShipped: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `unknown shipped policy "nope"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSources(t *testing.T) {
	items := []berthv1.AttachmentPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "on"}, Spec: berthv1.AttachmentPolicySpec{Rego: "a", Priority: 7}},
		{ObjectMeta: metav1.ObjectMeta{Name: "off"}, Spec: berthv1.AttachmentPolicySpec{Rego: "b", Enabled: ptr.To(false)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unset"}, Spec: berthv1.AttachmentPolicySpec{Rego: "c"}},
	}
	got := Sources(items)
	if len(got) != 2 || got[0].Name != "on" || got[0].Priority != 7 || got[1].Name != "unset" || got[1].Priority != DefaultPriority {
		t.Fatalf("got %+v", got)
	}
}
