// Package controllers runs the lifecycle of reservations after admission:
// binding an IPAllocation to the pod that was stored with it, releasing it
// when no live pod (or StatefulSet identity) holds it any more or when its
// pod never appeared, and keeping IPPool status and deletion honest.
package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/api/assignment"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// DefaultReservationTTL is how long a Reserved allocation waits for its pod
// (invariant 2). It must exceed the longest an admitted pod can take to be
// stored: the API server's request timeout (60 s by default), which bounds
// the webhook call and the write after it.
const DefaultReservationTTL = 2 * time.Minute

// DefaultStatusInterval is the least time between two status writes of one
// IPPool: reservations are many, status writes must not follow each one.
const DefaultStatusInterval = time.Second

// Options configure the controllers.
type Options struct {
	// ReservationTTL: see DefaultReservationTTL (used when zero).
	ReservationTTL time.Duration
	// StatusInterval: see DefaultStatusInterval (used when zero).
	StatusInterval time.Duration
	// Clock measures reservation ages; nil means the real clock.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles per controller; zero means 4.
	MaxConcurrentReconciles int
	// BindGrace: see DefaultBindGrace (used when zero); negative binds at
	// once.
	BindGrace time.Duration
}

// DefaultBindGrace is how long the binding of a reservation waits for its
// pod to be scheduled. Binding before the scheduler has placed the pod
// means writing the IPAllocation twice (without, then with the node); the
// scheduler usually takes well under a second, and the reservation is safe
// meanwhile (its pod is found through the assignment, so the TTL never
// releases it).
const DefaultBindGrace = 5 * time.Second

// Field indexes the controllers register on the manager's cache.
const (
	// podAllocationsField indexes pods by the IPAllocation names their
	// berth.io/assignment lists.
	podAllocationsField = "berth.io/allocations"
	// allocationPodField indexes IPAllocations by namespace/name of their pod.
	allocationPodField = "berth.io/pod"
	// allocationStatefulSetField indexes sticky IPAllocations by
	// namespace/name of their StatefulSet.
	allocationStatefulSetField = "berth.io/statefulset"
)

// SetupWithManager registers the indexes and both controllers with mgr.
// Call it before mgr.Start.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if opts.ReservationTTL <= 0 {
		opts.ReservationTTL = DefaultReservationTTL
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 4
	}
	if opts.BindGrace == 0 {
		opts.BindGrace = DefaultBindGrace
	}
	if err := registerIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("berth-allocator")
	ar := &allocationReconciler{
		client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), recorder: recorder,
		clock: opts.Clock, ttl: opts.ReservationTTL, bindGrace: opts.BindGrace,
	}
	if err := ar.setup(mgr, opts.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the ipallocation controller: %w", err)
	}
	pr := &poolReconciler{client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), recorder: recorder, interval: opts.StatusInterval}
	if err := pr.setup(mgr, opts.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the ippool controller: %w", err)
	}
	return nil
}

func registerIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	if err := allocator.IndexAllocationsByPool(ctx, indexer); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &corev1.Pod{}, podAllocationsField, func(obj client.Object) []string {
		return podAllocations(obj.(*corev1.Pod))
	}); err != nil {
		return fmt.Errorf("indexing pods by allocation: %w", err)
	}
	if err := indexer.IndexField(ctx, &berthv1.IPAllocation{}, allocationPodField, func(obj client.Object) []string {
		ref := obj.(*berthv1.IPAllocation).Spec.PodRef
		if ref == nil || ref.Name == "" {
			return nil
		}
		return []string{ref.Namespace + "/" + ref.Name}
	}); err != nil {
		return fmt.Errorf("indexing ipallocations by pod: %w", err)
	}
	if err := indexer.IndexField(ctx, &berthv1.IPAllocation{}, allocationStatefulSetField, func(obj client.Object) []string {
		s, err := allocator.ParseStickyKey(obj.(*berthv1.IPAllocation).Spec.StickyKey)
		if err != nil {
			return nil
		}
		return []string{s.Namespace + "/" + s.StatefulSet}
	}); err != nil {
		return fmt.Errorf("indexing ipallocations by statefulset: %w", err)
	}
	return nil
}

// podAllocations returns the IPAllocation names a pod's assignment lists. A
// malformed annotation lists none: the webhook wrote it and denies changes
// to it, so it can only be malformed on a pod Berth did not admit.
func podAllocations(pod *corev1.Pod) []string {
	value, ok := pod.Annotations[assignment.Annotation]
	if !ok {
		return nil
	}
	a, err := assignment.Parse(value)
	if err != nil {
		return nil
	}
	var names []string
	for _, itf := range a.Interfaces {
		for _, addr := range itf.Addresses {
			if addr.Allocation != "" {
				names = append(names, addr.Allocation)
			}
		}
	}
	return names
}

// terminal pods hold no network any more: their sandbox is gone.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// holds reports whether pod is a live holder of the IPAllocation name.
func holds(pod *corev1.Pod, name string) bool {
	if terminal(pod) {
		return false
	}
	for _, n := range podAllocations(pod) {
		if n == name {
			return true
		}
	}
	return false
}

// statefulSet reads the StatefulSet of a sticky key; nil if it is gone.
func statefulSet(ctx context.Context, reader client.Reader, s allocator.Sticky) (*appsv1.StatefulSet, error) {
	sts := &appsv1.StatefulSet{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.StatefulSet}, sts)
	if client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("reading statefulset %s/%s: %w", s.Namespace, s.StatefulSet, err)
	}
	if err != nil {
		return nil, nil
	}
	return sts, nil
}

// TrimPod is a cache transform (cache.ByObject{Transform: TrimPod}) that
// keeps of a pod only what these controllers read: identity, owners,
// deletion, the berth.io/assignment annotation, node and phase. A cluster's
// pods are the largest thing the controllers cache; use it when no other
// controller of the manager reads pods from the cache.
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, GenerateName: pod.GenerateName, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, Generation: pod.Generation, CreationTimestamp: pod.CreationTimestamp,
			DeletionTimestamp: pod.DeletionTimestamp, OwnerReferences: pod.OwnerReferences, Labels: pod.Labels,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	if v, ok := pod.Annotations[assignment.Annotation]; ok {
		trimmed.Annotations = map[string]string{assignment.Annotation: v}
	}
	return trimmed, nil
}
