package allocator_test

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// One control plane (etcd and kube-apiserver; no controllers are needed
// for the allocator alone) serves every test of the package.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// controller-runtime's cache logs through its global logger.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(controlplane.Main(m, controlplane.Options{}, &cp))
}

// instance is one allocator replica, as one webhook pod runs it: its own
// client, its own informer cache, its own view.
type instance struct {
	*allocator.Allocator
	client client.Client
	stop   context.CancelFunc
}

// newInstance starts a replica and waits until it is ready. store wraps the
// API store when a test injects faults.
func newInstance(t testing.TB, wrap func(allocator.Store) allocator.Store) *instance {
	t.Helper()
	c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, c)
	informers, err := cache.New(cp.Config, cache.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var store allocator.Store = &allocator.APIStore{Writer: c, Reader: c}
	if wrap != nil {
		store = wrap(store)
	}
	a, err := allocator.New(ctx, allocator.Options{Informers: informers, Store: store, APIReader: c, Log: logr.Discard()})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	inst := &instance{Allocator: a, client: c, stop: stop}
	t.Cleanup(stop)
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return a.Ready(), nil })
	if err != nil {
		t.Fatalf("allocator instance not ready: %v", err)
	}
	return inst
}

// createPool creates a pool that the test's end removes with its
// allocations, so that tests can run again (go test -count) on the same
// control plane.
func createPool(t testing.TB, name string, spec berthv1.IPPoolSpec) *berthv1.IPPool {
	t.Helper()
	pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := cp.Client.Create(controlplane.Context(t, 30*time.Second), pool); err != nil {
		t.Fatalf("creating ippool %s: %v", name, err)
	}
	t.Cleanup(func() { removePool(t, name) })
	return pool
}

// removePool deletes a pool and its allocations. No controller runs in
// this package, so the sticky finalizer is taken off here.
func removePool(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list := &berthv1.IPAllocationList{}
	if err := cp.Client.List(ctx, list, client.MatchingFields{"spec.pool": name}); err != nil {
		t.Errorf("listing the allocations of %s: %v", name, err)
		return
	}
	for i := range list.Items {
		if a := &list.Items[i]; len(a.Finalizers) > 0 {
			a.Finalizers = nil
			if err := cp.Client.Update(ctx, a); client.IgnoreNotFound(err) != nil {
				t.Errorf("removing the finalizer of %s: %v", a.Name, err)
			}
		}
	}
	if err := cp.Client.DeleteAllOf(ctx, &berthv1.IPAllocation{}, client.MatchingFields{"spec.pool": name}); err != nil {
		t.Errorf("deleting the allocations of %s: %v", name, err)
	}
	if err := cp.Client.Delete(ctx, &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}}); client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting ippool %s: %v", name, err)
	}
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func generatedPod(ns, generateName string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: generateName}}
}

func statefulSetPod(ns, sts string, ordinal int, uid types.UID) *corev1.Pod {
	p := pod(ns, sts+"-"+strconv.Itoa(ordinal))
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts, UID: uid, Controller: ptr.To(true)}}
	return p
}

// allocationsOf lists the IPAllocations of pool from the API server.
func allocationsOf(t testing.TB, pool string) []berthv1.IPAllocation {
	t.Helper()
	list := &berthv1.IPAllocationList{}
	if err := cp.Client.List(controlplane.Context(t, time.Minute), list, client.MatchingFields{"spec.pool": pool}); err != nil {
		t.Fatalf("listing allocations of %s: %v", pool, err)
	}
	return list.Items
}

func newUnstartedCache() (cache.Cache, error) {
	return cache.New(cp.Config, cache.Options{Scheme: cp.Scheme})
}

// warmUp makes c discover the REST mappings it will use, so that the
// first timed request of a benchmark does not pay for discovery.
func warmUp(t testing.TB, c client.Client) {
	t.Helper()
	ctx := controlplane.Context(t, 30*time.Second)
	for _, list := range []client.ObjectList{&berthv1.IPAllocationList{}, &berthv1.IPPoolList{}, &corev1.ConfigMapList{}} {
		if err := c.List(ctx, list, client.Limit(1)); err != nil {
			t.Fatalf("warming up the client: %v", err)
		}
	}
	// The API server's first IPAllocation write of its life takes about
	// two seconds (validation set up on first use): not the allocator's.
	addr := netip.MustParseAddr("10.255.255.254")
	obj := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName("warm-up", addr)},
		Spec: berthv1.IPAllocationSpec{Pool: "warm-up", IP: addr.String(), Phase: berthv1.AllocationReserved}}
	if err := c.Create(ctx, obj); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("warming up the API server: %v", err)
	}
	if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		t.Fatalf("warming up the API server: %v", err)
	}
}
