package controllers_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// TestBindThenReleaseWhenThePodGoes: a stored pod's reservation is bound
// to it (name, UID, node once scheduled, owner reference) and released when
// the pod is deleted or finishes.
func TestBindThenReleaseWhenThePodGoes(t *testing.T) {
	e := setup(t)
	ctx := controlplane.Context(t, 2*time.Minute)
	ns, node := "bind"+repeat(t), "node-bind"
	e.namespace(t, ns, "10.100.0.0/24")
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: node}, &corev1.Node{}); apierrors.IsNotFound(err) {
		if _, err := cp.CreateNode(ctx, node, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	named := testPod(ns, "named")
	generated := testPod(ns, "")
	generated.GenerateName = "gen-"
	finished := testPod(ns, "finished")
	for _, p := range []*corev1.Pod{named, generated, finished} {
		if err := cp.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	names := map[*corev1.Pod]string{}
	for _, p := range []*corev1.Pod{named, generated, finished} {
		allocs := podAssignment(t, p)
		if len(allocs) != 1 {
			t.Fatalf("pod %s: want one allocation, got %v", p.Name, allocs)
		}
		names[p] = allocs[0]
		eventually(t, time.Minute, "binding "+allocs[0]+" to pod "+p.Name, func() (bool, error) {
			a, err := getAllocation(ctx, allocs[0])
			if err != nil {
				return false, err
			}
			ref := a.Spec.PodRef
			// No owner reference: a cluster-scoped object cannot be owned by
			// a pod (the garbage collector would refuse it).
			unowned := len(a.OwnerReferences) == 0
			return a.Spec.Phase == berthv1.AllocationBound && ref.UID == p.UID && ref.Name == p.Name && unowned && a.Spec.Node == node, nil
		})
	}

	if err := cp.Client.Delete(ctx, named, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(finished), finished); err != nil {
			return err
		}
		finished.Status.Phase = corev1.PodSucceeded
		return cp.Client.Status().Update(ctx, finished)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{named, finished} {
		eventually(t, time.Minute, "releasing "+names[p]+" of pod "+p.Name, func() (bool, error) {
			_, err := getAllocation(ctx, names[p])
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
	}
	// The running pod keeps its address.
	if _, err := getAllocation(ctx, names[generated]); err != nil {
		t.Fatalf("the live pod's allocation: %v", err)
	}
}

// TestReservationOfAPodThatNeverCameExpires is invariant 2 for an admission
// whose pod was never stored: released after the TTL, with an event; a pod
// stored late but within the TTL keeps its address past it.
func TestReservationOfAPodThatNeverCameExpires(t *testing.T) {
	e := setup(t)
	ctx := controlplane.Context(t, time.Minute)
	ns := "ttl" + repeat(t)
	pool := &berthv1.IPPool{}
	pool.Name = ns
	pool.Spec.Subnet = "10.101.0.0/24"
	if err := cp.Client.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metaName(ns)}); err != nil {
		t.Fatal(err)
	}
	reserve := func(pod *corev1.Pod) allocator.Reservation {
		res, err := e.alloc.Reserve(ctx, allocator.Request{Pod: pod, AdmissionUID: types.UID("adm-" + pod.Name + pod.GenerateName), Interface: "net1", IPv4Pools: []string{ns}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	ghostPod := testPod(ns, "")
	ghostPod.GenerateName = "ghost-"
	reservedAt := time.Now()
	ghost := reserve(ghostPod)
	late := reserve(testPod(ns, "late"))

	time.Sleep(testTTL / 3)
	if _, err := getAllocation(ctx, ghost.Allocation); err != nil {
		t.Fatalf("reservation released before its TTL: %v", err)
	}
	latePod := testPod(ns, "late")
	value, err := assignmentOf([]allocator.Reservation{late})
	if err != nil {
		t.Fatal(err)
	}
	latePod.Annotations = map[string]string{"berth.io/assignment": value}
	if err := cp.Client.Create(ctx, latePod); err != nil {
		t.Fatal(err)
	}
	eventually(t, testTTL+20*time.Second, "expiry of "+ghost.Allocation, func() (bool, error) {
		_, err := getAllocation(ctx, ghost.Allocation)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if since := time.Since(reservedAt); since < testTTL {
		t.Fatalf("released after %s, before the TTL of %s", since, testTTL)
	}
	a, err := getAllocation(ctx, late.Allocation)
	if err != nil || a.Spec.Phase != berthv1.AllocationBound || a.Spec.PodRef.UID != latePod.UID {
		t.Fatalf("the late pod's reservation: %+v, %v", a, err)
	}
	eventually(t, 30*time.Second, "an event saying why", func() (bool, error) {
		evs := &eventsList{}
		if err := cp.Client.List(ctx, &evs.EventList, client.InNamespace("default")); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == ghost.Allocation && ev.Reason == "Released" && strings.Contains(ev.Note, "did not appear within 3s") {
				return true, nil
			}
		}
		return false, nil
	})
}
