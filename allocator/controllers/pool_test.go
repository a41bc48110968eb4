package controllers_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/allocator/controllers"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// TestPoolStatusFollowsAllocationsInFewWrites creates 40 pods in a burst
// and counts the writes to the pool: the status ends right (total,
// allocated, phase, condition) after far fewer writes than reservations.
func TestPoolStatusFollowsAllocationsInFewWrites(t *testing.T) {
	e := setup(t)
	ctx := controlplane.Context(t, 2*time.Minute)
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "status" + repeat(t)
	e.namespace(t, ns, "10.103.0.0/26") // 62 addresses
	pool := &berthv1.IPPool{}
	eventually(t, 30*time.Second, "finalizer and first status", func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: ns}, pool)
		return err == nil && slices.Contains(pool.Finalizers, allocator.PoolFinalizer) && pool.Status.TotalIPCount == 62, err
	})
	w, err := wc.Watch(ctx, &berthv1.IPPoolList{}, client.MatchingFields{"metadata.name": ns})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writes := make(chan int, 1)
	go func() {
		n := 0
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified {
				n++
				if p := ev.Object.(*berthv1.IPPool); p.Status.AllocatedIPCount == 40 {
					writes <- n
					return
				}
			}
		}
	}()
	for i := 0; i < 40; i++ {
		if err := cp.Client.Create(ctx, testPod(ns, fmt.Sprintf("p-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-writes:
		if n > 20 {
			t.Fatalf("%d pool writes for 40 reservations: status writes are not coalesced", n)
		}
		t.Logf("%d pool writes for 40 reservations", n)
	case <-time.After(time.Minute):
		t.Fatal("the status never counted 40 allocations")
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: ns}, pool); err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(pool.Status.Conditions, controllers.ConditionReady)
	if pool.Status.Phase != berthv1.IPPoolReady || ready == nil || ready.Status != "True" || ready.Message != "40 of 62 addresses allocated" {
		t.Fatalf("status: phase %s, Ready %+v", pool.Status.Phase, ready)
	}
}

// TestPoolDeletionWaitsForItsAllocations: deleting a pool in use is
// refused by CheckPoolDeletion and held by the finalizer, with a condition
// and an event naming the pods; new reservations stop; the pool goes once
// its pods have.
func TestPoolDeletionWaitsForItsAllocations(t *testing.T) {
	e := setup(t)
	ctx := controlplane.Context(t, 2*time.Minute)
	ns := "doomed" + repeat(t)
	e.namespace(t, ns, "10.104.0.0/29")
	pods := []*corev1.Pod{testPod(ns, "a"), testPod(ns, "b")}
	for _, p := range pods {
		if err := cp.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pool := &berthv1.IPPool{}
	eventually(t, 30*time.Second, "finalizer", func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: ns}, pool)
		return err == nil && slices.Contains(pool.Finalizers, allocator.PoolFinalizer), err
	})
	want := fmt.Sprintf("ippool %q still has 2 allocated address(es), held by %s/a, %s/b: delete those pods (or scale their StatefulSets down) first", ns, ns, ns)
	err := allocator.CheckPoolDeletion(ctx, cp.Client, ns)
	if !errors.Is(err, allocator.ErrPoolInUse) || err.Error() != want {
		t.Fatalf("CheckPoolDeletion = %v\nwant %s", err, want)
	}
	if err := cp.Client.Delete(ctx, pool); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "DeletionBlocked condition", func() (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: ns}, pool); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(pool.Status.Conditions, controllers.ConditionDeletionBlocked)
		return c != nil && c.Message == want, nil
	})
	eventually(t, 30*time.Second, "DeletionBlocked event", func() (bool, error) {
		evs := &eventsList{}
		if err := cp.Client.List(ctx, &evs.EventList, client.InNamespace("default")); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == ns && ev.Reason == "DeletionBlocked" && ev.Note == want {
				return true, nil
			}
		}
		return false, nil
	})
	// Admission stops handing out its addresses.
	eventually(t, 30*time.Second, "refusal of new pods", func() (bool, error) {
		late := testPod(ns, fmt.Sprintf("late-%d", time.Now().UnixNano()))
		err := cp.Client.Create(ctx, late)
		if err == nil {
			pods = append(pods, late) // admitted before the view saw the deletion
			return false, nil
		}
		return strings.Contains(err.Error(), fmt.Sprintf("ippool %q is being deleted", ns)), nil
	})
	for _, p := range pods {
		if err := cp.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "pool gone", func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: ns}, pool)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}
