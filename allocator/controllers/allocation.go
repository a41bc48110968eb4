package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// conflictRetry is how soon an update that lost a race is retried.
const conflictRetry = 200 * time.Millisecond

// allocationReconciler decides the fate of one IPAllocation: bind it to the
// live pod that holds it, keep it (sticky, or young enough to wait for its
// pod), or release it. It deletes only after asking the API server itself,
// never on the cache's word alone: a held address given back is an address
// two pods can get (invariant 1).
type allocationReconciler struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	clock     clock.PassiveClock
	ttl       time.Duration
	bindGrace time.Duration
}

func (r *allocationReconciler) setup(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("ipallocation").
		For(&berthv1.IPAllocation{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToAllocations)).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.statefulSetToAllocations)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// podToAllocations maps a pod event to the allocations it lists and those
// reserved under its name.
func (r *allocationReconciler) podToAllocations(ctx context.Context, obj client.Object) []reconcile.Request {
	pod := obj.(*corev1.Pod)
	var reqs []reconcile.Request
	for _, name := range podAllocations(pod) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
	}
	list := &berthv1.IPAllocationList{}
	if err := r.client.List(ctx, list, client.MatchingFields{allocationPodField: pod.Namespace + "/" + pod.Name}); err == nil {
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return reqs
}

func (r *allocationReconciler) statefulSetToAllocations(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &berthv1.IPAllocationList{}
	if err := r.client.List(ctx, list, client.MatchingFields{allocationStatefulSetField: obj.GetNamespace() + "/" + obj.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return reqs
}

func (r *allocationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	alloc := &berthv1.IPAllocation{}
	if err := r.client.Get(ctx, req.NamespacedName, alloc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	pod, err := r.holder(ctx, alloc, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	if pod != nil {
		return r.bind(ctx, alloc, pod, false)
	}
	sticky := alloc.Spec.StickyKey != "" && alloc.DeletionTimestamp == nil
	if sticky {
		keep, err := r.stickyKeep(ctx, r.client, alloc)
		if err != nil || keep {
			// The StatefulSet's and the pod's own events bring it back here.
			return ctrl.Result{}, err
		}
	}
	if wait := reservationWait(alloc, r.clock, r.ttl); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// The cache says nobody holds it. Ask the API server before letting go.
	if pod, err = r.holder(ctx, alloc, true); err != nil {
		return ctrl.Result{}, err
	}
	if pod != nil {
		return r.bind(ctx, alloc, pod, true)
	}
	if sticky {
		keep, err := r.stickyKeep(ctx, r.apiReader, alloc)
		if err != nil || keep {
			return ctrl.Result{}, err
		}
	}
	return r.release(ctx, alloc)
}

// holder returns the live pod holding alloc, from the cache or the API
// server (live): a pod of its namespace whose assignment lists it and that
// is not terminal.
func (r *allocationReconciler) holder(ctx context.Context, alloc *berthv1.IPAllocation, live bool) (*corev1.Pod, error) {
	var reader client.Reader = r.client
	if live {
		reader = r.apiReader
	}
	ref := alloc.Spec.PodRef
	if ref == nil || ref.Namespace == "" {
		return nil, nil
	}
	if ref.Name != "" {
		pod := &corev1.Pod{}
		err := reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, pod)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading pod %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if !holds(pod, alloc.Name) {
			return nil, nil
		}
		return pod, nil
	}
	// Reserved for a pod with only a generateName: it has a name once
	// stored, found by the allocation its assignment lists.
	if !live {
		pods := &corev1.PodList{}
		if err := reader.List(ctx, pods, client.InNamespace(ref.Namespace), client.MatchingFields{podAllocationsField: alloc.Name}); err != nil {
			return nil, fmt.Errorf("listing pods of namespace %s: %w", ref.Namespace, err)
		}
		for i := range pods.Items {
			if holds(&pods.Items[i], alloc.Name) {
				return &pods.Items[i], nil
			}
		}
		return nil, nil
	}
	return r.liveHolderByScan(ctx, alloc, ref.Namespace)
}

// liveHolderByScan pages through the pods of a namespace on the API server.
// It runs only when a never-bound reservation of a generateName pod expires,
// the one case where no name leads to the pod.
func (r *allocationReconciler) liveHolderByScan(ctx context.Context, alloc *berthv1.IPAllocation, namespace string) (*corev1.Pod, error) {
	cont := ""
	for {
		pods := &corev1.PodList{}
		if err := r.apiReader.List(ctx, pods, client.InNamespace(namespace), client.Limit(500), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing pods of namespace %s: %w", namespace, err)
		}
		for i := range pods.Items {
			if holds(&pods.Items[i], alloc.Name) {
				return &pods.Items[i], nil
			}
		}
		if cont = pods.Continue; cont == "" {
			return nil, nil
		}
	}
}

// stickyKeep reports whether a sticky allocation no pod holds is kept: its
// StatefulSet still wants the pod, and that pod, if it exists, was not
// admitted with other addresses instead (a static address asked for later,
// a pool changed by policy): then this one is superseded.
func (r *allocationReconciler) stickyKeep(ctx context.Context, reader client.Reader, alloc *berthv1.IPAllocation) (bool, error) {
	s, err := allocator.ParseStickyKey(alloc.Spec.StickyKey)
	if err != nil {
		return false, nil // not a key Berth wrote: not sticky
	}
	sts, err := statefulSet(ctx, reader, s)
	if err != nil || !s.Wants(sts) {
		return false, err
	}
	pod := &corev1.Pod{}
	err = reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Pod}, pod)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading pod %s/%s: %w", s.Namespace, s.Pod, err)
	}
	// The pod exists and does not hold this allocation (else it would have
	// been found as the holder): a terminal pod is replaced by the
	// StatefulSet controller and comes back for it; a live one has others.
	return terminal(pod), nil
}

// bind ties alloc to pod: pod name and UID, node, phase Bound, and the owner
// the garbage collector releases it with (the pod; the StatefulSet for a
// sticky address). Changing the pod it is bound to is done only on the API
// server's word (live), never on a cache that may still show a deleted pod
// of the same name.
func (r *allocationReconciler) bind(ctx context.Context, alloc *berthv1.IPAllocation, pod *corev1.Pod, live bool) (ctrl.Result, error) {
	if alloc.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // held: the finalizer stays until the pod is gone
	}
	ref := alloc.Spec.PodRef
	if ref.UID != pod.UID && !live {
		fresh := &corev1.Pod{}
		err := r.apiReader.Get(ctx, client.ObjectKeyFromObject(pod), fresh)
		if apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if !holds(fresh, alloc.Name) {
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		pod = fresh
	}
	if alloc.Spec.Phase == berthv1.AllocationReserved && pod.Spec.NodeName == "" && r.bindGrace > 0 {
		// Bind once, with the node: the scheduler's update requeues this.
		if age := r.clock.Since(pod.CreationTimestamp.Add(time.Second)); age < r.bindGrace {
			return ctrl.Result{RequeueAfter: r.bindGrace - age}, nil
		}
	}
	want := alloc.DeepCopy()
	want.Spec.Phase = berthv1.AllocationBound
	want.Spec.PodRef = &berthv1.PodReference{Namespace: pod.Namespace, Name: pod.Name, GenerateName: ref.GenerateName, UID: pod.UID}
	want.Spec.Node = pod.Spec.NodeName
	if equalBinding(alloc, want) {
		return ctrl.Result{}, nil
	}
	if err := r.client.Update(ctx, want); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		return ctrl.Result{}, fmt.Errorf("binding ipallocation %s to pod %s/%s: %w", alloc.Name, pod.Namespace, pod.Name, err)
	}
	return ctrl.Result{}, nil
}

func equalBinding(a, b *berthv1.IPAllocation) bool {
	return a.Spec.Phase == b.Spec.Phase && *a.Spec.PodRef == *b.Spec.PodRef && a.Spec.Node == b.Spec.Node
}

// release gives the address back. The preconditions make it a no-op if
// alloc changed since it was read (a sticky take-over, a bind).
func (r *allocationReconciler) release(ctx context.Context, alloc *berthv1.IPAllocation) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	rv := alloc.ResourceVersion
	if i := slices.Index(alloc.Finalizers, allocator.StickyFinalizer); i >= 0 {
		updated := alloc.DeepCopy()
		updated.Finalizers = slices.Delete(updated.Finalizers, i, i+1)
		if err := r.client.Update(ctx, updated); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return ctrl.Result{RequeueAfter: conflictRetry}, nil
			}
			return ctrl.Result{}, fmt.Errorf("removing the finalizer of ipallocation %s: %w", alloc.Name, err)
		}
		if alloc.DeletionTimestamp != nil {
			log.V(1).Info("released", "ipallocation", alloc.Name, "reason", "deleted and no pod holds it")
			return ctrl.Result{}, nil
		}
		rv = updated.ResourceVersion
	}
	err := r.client.Delete(ctx, alloc, client.Preconditions{UID: ptr.To(alloc.UID), ResourceVersion: ptr.To(rv)})
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("releasing ipallocation %s: %w", alloc.Name, err)
	}
	reason := r.releaseReason(alloc)
	log.V(1).Info("released", "ipallocation", alloc.Name, "reason", reason)
	if alloc.Spec.Phase == berthv1.AllocationReserved || alloc.Spec.StickyKey != "" {
		// Rare, and worth telling: a pod that never came, a sticky address
		// let go. Ordinary releases after pod deletion stay silent.
		r.recorder.Eventf(alloc, nil, corev1.EventTypeNormal, "Released", "Release", "%s released: %s", alloc.Spec.IP, reason)
	}
	return ctrl.Result{}, nil
}

func (r *allocationReconciler) releaseReason(alloc *berthv1.IPAllocation) string {
	pod := podName(alloc.Spec.PodRef)
	switch {
	case alloc.Spec.StickyKey != "":
		return "the StatefulSet no longer wants pod " + pod
	case alloc.Spec.Phase == berthv1.AllocationReserved:
		return fmt.Sprintf("pod %s did not appear within %s of admission", pod, r.ttl)
	default:
		return "pod " + pod + " is gone or finished"
	}
}

// reservationWait is how long a never-bound, non-sticky reservation still
// waits for its pod before it may be released; 0 when it need not wait.
// creationTimestamp has a resolution of one second: the age counts from the
// end of that second so that no reservation goes early.
func reservationWait(alloc *berthv1.IPAllocation, clk clock.PassiveClock, ttl time.Duration) time.Duration {
	if alloc.Spec.Phase != berthv1.AllocationReserved || alloc.Spec.StickyKey != "" {
		return 0
	}
	return max(ttl-clk.Since(alloc.CreationTimestamp.Add(time.Second)), 0)
}

func podName(ref *berthv1.PodReference) string {
	if ref == nil {
		return "(none)"
	}
	if ref.Name != "" {
		return ref.Namespace + "/" + ref.Name
	}
	return ref.Namespace + "/" + ref.GenerateName + "*"
}
