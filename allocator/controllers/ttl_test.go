package controllers

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/api/assignment"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// TestReservationTTLRunsOnTheInjectedClock checks the TTL decision alone,
// with a fake clock and a fake client (the real API server's part is in the
// integration tests): wait while young, requeue for exactly the time left,
// release once expired, never release what a pod holds.
func TestReservationTTLRunsOnTheInjectedClock(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const name = "p.10.0.0.5"
	holderAnnotation, err := (&assignment.Assignment{Interfaces: []assignment.Interface{{
		Interface: "net1", Network: "a/net", Addresses: []assignment.Address{{Address: "10.0.0.5/24", Pool: "p", Allocation: name}},
	}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		elapsed     time.Duration
		pod         *corev1.Pod
		wantRequeue time.Duration
		wantGone    bool
		wantPhase   berthv1.AllocationPhase
	}{
		// Creation times have a one-second resolution: count from the end
		// of the second.
		{name: "just reserved", elapsed: 0, wantRequeue: 2*time.Minute + time.Second, wantPhase: berthv1.AllocationReserved},
		{name: "a minute old", elapsed: time.Minute, wantRequeue: time.Minute + time.Second, wantPhase: berthv1.AllocationReserved},
		{name: "expired", elapsed: 2*time.Minute + time.Second, wantGone: true},
		{name: "expired but the pod exists", elapsed: time.Hour, wantPhase: berthv1.AllocationBound,
			pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x-abcde", UID: "pod-uid", Annotations: map[string]string{assignment.Annotation: holderAnnotation}}}},
		{name: "expired and the pod finished", elapsed: time.Hour, wantGone: true,
			pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x-abcde", UID: "pod-uid", Annotations: map[string]string{assignment.Annotation: holderAnnotation}}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			if err := berthv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			alloc := &berthv1.IPAllocation{
				ObjectMeta: metav1.ObjectMeta{Name: name, UID: "alloc-uid", CreationTimestamp: metav1.NewTime(created)},
				Spec: berthv1.IPAllocationSpec{Pool: "p", IP: "10.0.0.5", Phase: berthv1.AllocationReserved,
					PodRef: &berthv1.PodReference{Namespace: "a", GenerateName: "x-"}, AdmissionUID: "adm"},
			}
			objs := []client.Object{alloc}
			if tt.pod != nil {
				objs = append(objs, tt.pod)
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
				WithIndex(&corev1.Pod{}, podAllocationsField, func(o client.Object) []string { return podAllocations(o.(*corev1.Pod)) }).
				Build()
			recorder := events.NewFakeRecorder(10)
			r := &allocationReconciler{client: c, apiReader: c, recorder: recorder,
				clock: clocktesting.NewFakePassiveClock(created.Add(tt.elapsed)), ttl: DefaultReservationTTL}
			res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tt.wantRequeue {
				t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, tt.wantRequeue)
			}
			got := &berthv1.IPAllocation{}
			err = c.Get(t.Context(), client.ObjectKey{Name: name}, got)
			if tt.wantGone {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("allocation not released: %v", err)
				}
				select {
				case ev := <-recorder.Events:
					if !strings.Contains(ev, "Released") || !strings.Contains(ev, "did not appear within 2m0s") && tt.pod == nil {
						t.Errorf("event %q", ev)
					}
				default:
					t.Error("no event for the release")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.Phase != tt.wantPhase {
				t.Fatalf("phase %s, want %s", got.Spec.Phase, tt.wantPhase)
			}
			if tt.wantPhase == berthv1.AllocationBound && (got.Spec.PodRef.UID != "pod-uid" || got.Spec.PodRef.Name != "x-abcde" || len(got.OwnerReferences) != 0) {
				t.Fatalf("bound to %+v, owners %v", got.Spec.PodRef, got.OwnerReferences)
			}
		})
	}
}

// TestStickyAllocationDecisions: what happens to a sticky allocation, from
// its StatefulSet and the pod of its name.
func TestStickyAllocationDecisions(t *testing.T) {
	const name = "p.10.0.0.7"
	listing := func(alloc string) map[string]string {
		v, err := (&assignment.Assignment{Interfaces: []assignment.Interface{{
			Interface: "net1", Network: "db/net", Addresses: []assignment.Address{{Address: "10.0.0.9/24", Pool: "p", Allocation: alloc}},
		}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{assignment.Annotation: v}
	}
	stsOwner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", UID: "sts-uid", Controller: ptr.To(true)}}
	sts := func(replicas int32) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web", UID: "sts-uid"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)}}
	}
	pod := func(annotations map[string]string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-1", UID: "pod-uid", Annotations: annotations, OwnerReferences: stsOwner}, Status: corev1.PodStatus{Phase: phase}}
	}
	tests := []struct {
		name      string
		objs      []client.Object
		wantGone  bool
		wantPhase berthv1.AllocationPhase
	}{
		{name: "wanted, pod not there yet", objs: []client.Object{sts(2)}, wantPhase: berthv1.AllocationReserved},
		{name: "wanted, pod failed: it comes back", objs: []client.Object{sts(2), pod(listing("other"), corev1.PodFailed)}, wantPhase: berthv1.AllocationReserved},
		{name: "wanted, pod holds it", objs: []client.Object{sts(2), pod(listing(name), corev1.PodRunning)}, wantPhase: berthv1.AllocationBound},
		{name: "superseded: the pod got other addresses", objs: []client.Object{sts(2), pod(listing("p.10.0.0.9"), corev1.PodRunning)}, wantGone: true},
		{name: "scaled below the ordinal", objs: []client.Object{sts(1)}, wantGone: true},
		{name: "StatefulSet gone", wantGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			if err := berthv1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			alloc := &berthv1.IPAllocation{
				ObjectMeta: metav1.ObjectMeta{Name: name, UID: "alloc-uid", Finalizers: []string{allocator.StickyFinalizer}},
				Spec: berthv1.IPAllocationSpec{Pool: "p", IP: "10.0.0.7", Phase: berthv1.AllocationReserved, StickyKey: "db/web/web-1/net1",
					PodRef: &berthv1.PodReference{Namespace: "db", Name: "web-1"}},
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(tt.objs, alloc)...).
				WithIndex(&corev1.Pod{}, podAllocationsField, func(o client.Object) []string { return podAllocations(o.(*corev1.Pod)) }).
				Build()
			r := &allocationReconciler{client: c, apiReader: c, recorder: events.NewFakeRecorder(10),
				clock: clocktesting.NewFakePassiveClock(time.Now()), ttl: DefaultReservationTTL}
			if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
				t.Fatal(err)
			}
			got := &berthv1.IPAllocation{}
			err := c.Get(t.Context(), client.ObjectKey{Name: name}, got)
			if tt.wantGone {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("sticky allocation kept: %v %+v", err, got)
				}
				return
			}
			if err != nil || got.Spec.Phase != tt.wantPhase {
				t.Fatalf("phase %s (%v), want %s", got.Spec.Phase, err, tt.wantPhase)
			}
			if tt.wantPhase == berthv1.AllocationBound && (len(got.OwnerReferences) != 0 || got.Spec.PodRef.UID != "pod-uid") {
				t.Fatalf("bound with owners %v to %+v", got.OwnerReferences, got.Spec.PodRef)
			}
		})
	}
}
