package controller

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/tests/controlplane"
)

// startDefaulter runs the Defaulter as berth-controller does, in a manager
// with leader election, until the test ends.
func startDefaulter(t *testing.T) {
	t.Helper()
	// Registered before the manager's stop, so it runs after it: a running
	// Defaulter would create the Coordinator again.
	t.Cleanup(func() { deleteAndWait(t, &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: coordinator.Name}}) })
	mgr := newManager(t, ctrl.Options{
		LeaderElection: true, LeaderElectionID: "berth-coordinator-default-test", LeaderElectionNamespace: "default",
		LeaderElectionReleaseOnCancel: true,
	})
	if err := SetupDefaultWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	run(t, mgr)
}

func requireNoCoordinator(t *testing.T) {
	t.Helper()
	err := cp.Client.Get(controlplane.Context(t, 10*time.Second), client.ObjectKey{Name: coordinator.Name}, &berthv1.Coordinator{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("a Coordinator exists before the test (err %v)", err)
	}
}

// TestDefaultCreatedAndRecreated: on a cluster without a Coordinator the
// Defaulter creates "default" (podCIDRType auto and nothing else), creates
// it again when it is deleted, and applying examples/coordinator.yaml over
// it, as the demo does, takes over.
func TestDefaultCreatedAndRecreated(t *testing.T) {
	requireNoCoordinator(t)
	startDefaulter(t)
	c := waitFor(t, "the Coordinator to be created", func(*berthv1.Coordinator) bool { return true })
	if want := (berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRAuto}); !equality.Semantic.DeepEqual(c.Spec, want) {
		t.Errorf("created spec %+v, want %+v", c.Spec, want)
	}
	if len(c.ManagedFields) == 0 || c.ManagedFields[0].Manager != DefaultName {
		t.Errorf("managed fields %+v, want the manager %s", c.ManagedFields, DefaultName)
	}

	first := c.UID
	if err := cp.Client.Delete(controlplane.Context(t, 10*time.Second), c); err != nil {
		t.Fatal(err)
	}
	c = waitFor(t, "the Coordinator to be created again", func(c *berthv1.Coordinator) bool { return c.UID != first })

	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "examples", "coordinator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	example := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &example.Object); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Patch(controlplane.Context(t, 10*time.Second), example, client.Apply, client.FieldOwner("berth-test"), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured apply, as the demo does
		t.Fatalf("applying examples/coordinator.yaml over the created Coordinator: %v", err)
	}
	applied := waitFor(t, "the applied spec", func(c *berthv1.Coordinator) bool { return c.Spec.DetectGateway != nil })
	if applied.UID != c.UID || len(applied.Spec.HijackCIDRs) != 1 || applied.Spec.Mode == nil || *applied.Spec.Mode != berthv1.CoordinatorAuto {
		t.Errorf("after the apply: uid %s (was %s), spec %+v", applied.UID, c.UID, applied.Spec)
	}
}

// TestDefaultLeavesExistingAlone: a Coordinator that exists is never
// written, whatever its spec.
func TestDefaultLeavesExistingAlone(t *testing.T) {
	requireNoCoordinator(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRNone, PodCIDRs: []string{"10.1.0.0/16"}})
	ctx := controlplane.Context(t, 10*time.Second)
	before := &berthv1.Coordinator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, before); err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(1)
	d := &Defaulter{client: cp.Client, events: rec}
	if _, err := d.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: coordinator.Name}}); err != nil {
		t.Fatal(err)
	}
	after := &berthv1.Coordinator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion || after.Spec.PodCIDRType != berthv1.PodCIDRNone {
		t.Errorf("the Coordinator was written: resourceVersion %s -> %s, spec %+v", before.ResourceVersion, after.ResourceVersion, after.Spec)
	}
	if len(rec.Events) != 0 {
		t.Errorf("event %q for a Coordinator left alone", <-rec.Events)
	}
}
