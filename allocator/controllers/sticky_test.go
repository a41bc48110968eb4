package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// TestStickyStatefulSetAddresses drives a StatefulSet through
// kube-controller-manager: each pod's address survives its deletion and
// comes back to the pod of the same name; scaling down releases the
// addresses of the ordinals dropped; deleting the StatefulSet releases the
// rest once its pods are gone.
func TestStickyStatefulSetAddresses(t *testing.T) {
	e := setup(t)
	ctx := controlplane.Context(t, 3*time.Minute)
	ns := "sticky" + repeat(t)
	e.namespace(t, ns, "10.102.0.0/24")
	labels := map[string]string{"app": "web"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](3),
			ServiceName: "web",
			// No kubelet makes pods Ready: create them all at once.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}},
			},
		},
	}
	if err := cp.Client.Create(ctx, sts); err != nil {
		t.Fatal(err)
	}
	// allocs maps pod name to its allocation, once all are bound.
	bound := func(n int) map[string]string {
		out := map[string]string{}
		eventually(t, time.Minute, fmt.Sprintf("%d bound sticky pods", n), func() (bool, error) {
			pods := &corev1.PodList{}
			if err := cp.Client.List(ctx, pods, client.InNamespace(ns)); err != nil {
				return false, err
			}
			clear(out)
			for i := range pods.Items {
				p := &pods.Items[i]
				names := podAssignment(t, p)
				a, err := getAllocation(ctx, names[0])
				if err != nil {
					return false, err
				}
				if a.Spec.Phase != berthv1.AllocationBound || a.Spec.PodRef.UID != p.UID || a.Spec.StickyKey != ns+"/web/"+p.Name+"/net1" ||
					len(a.OwnerReferences) != 0 || len(a.Finalizers) != 1 {
					return false, nil
				}
				out[p.Name] = names[0]
			}
			return len(out) == n, nil
		})
		return out
	}
	first := bound(3)

	// The pod goes (as a node drain or a crash would take it); the
	// StatefulSet controller recreates it and it gets its address back.
	old := &corev1.Pod{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-1"}, old); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Delete(ctx, old, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "web-1 recreated", func() (bool, error) {
		p := &corev1.Pod{}
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-1"}, p)
		return err == nil && p.UID != old.UID, client.IgnoreNotFound(err)
	})
	again := bound(3)
	for name, alloc := range first {
		if again[name] != alloc {
			t.Fatalf("pod %s had %s, now %s", name, alloc, again[name])
		}
	}

	// Scale to 1: web-1 and web-2 go, and so do their addresses.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
			return err
		}
		sts.Spec.Replicas = ptr.To[int32](1)
		return cp.Client.Update(ctx, sts)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2"} {
		waitGone(ctx, t, first[name])
	}
	if _, err := getAllocation(ctx, first["web-0"]); err != nil {
		t.Fatalf("web-0's address after scale-down: %v", err)
	}

	// Deleting the StatefulSet: the garbage collector deletes web-0 and the
	// allocation; the finalizer keeps the lock until web-0 is gone.
	if err := cp.Client.Delete(ctx, sts); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, first["web-0"])
	p := &corev1.Pod{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-0"}, p); !apierrors.IsNotFound(err) {
		t.Fatalf("allocation released while pod web-0 still exists (%v)", err)
	}
}

func waitGone(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	eventually(t, time.Minute, "release of "+name, func() (bool, error) {
		_, err := getAllocation(ctx, name)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}
