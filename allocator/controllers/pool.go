package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/allocator/ranges"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Condition types of an IPPool.
const (
	// ConditionReady: the pool can serve new reservations.
	ConditionReady = "Ready"
	// ConditionDeletionBlocked: the pool is being deleted but still has
	// allocations; the message says how many and for which pods.
	ConditionDeletionBlocked = "DeletionBlocked"
)

// poolReconciler keeps an IPPool's status (counts, phase, conditions) and
// its finalizer. Allocation events reach it delayed by the status interval
// and coalesced by the work queue, so a burst of reservations costs one
// status write per interval, not one per reservation.
type poolReconciler struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	interval  time.Duration
}

func (r *poolReconciler) setup(mgr ctrl.Manager, workers int) error {
	delayed := handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.enqueueLater(e.Object, q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.enqueueLater(e.ObjectNew, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.enqueueLater(e.Object, q)
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("ippool").
		For(&berthv1.IPPool{}).
		Watches(&berthv1.IPAllocation{}, delayed).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func (r *poolReconciler) enqueueLater(obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if a, ok := obj.(*berthv1.IPAllocation); ok {
		// AddAfter keeps the earliest pending time for a key: events in a
		// burst collapse into one reconcile.
		q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: a.Spec.Pool}}, r.interval)
	}
}

func (r *poolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pool := &berthv1.IPPool{}
	if err := r.client.Get(ctx, req.NamespacedName, pool); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	allocs := &berthv1.IPAllocationList{}
	if err := r.client.List(ctx, allocs, client.MatchingFields{allocator.PoolField: pool.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the ipallocations of ippool %s: %w", pool.Name, err)
	}
	if pool.DeletionTimestamp != nil {
		return r.deleting(ctx, pool, allocs.Items)
	}
	if !slices.Contains(pool.Finalizers, allocator.PoolFinalizer) {
		pool.Finalizers = append(pool.Finalizers, allocator.PoolFinalizer)
		if err := r.client.Update(ctx, pool); err != nil {
			return requeueOnConflict(err, "adding the finalizer of ippool %s", pool.Name)
		}
		return ctrl.Result{}, nil // the update brings it back for the status
	}
	return r.writeStatus(ctx, pool, computeStatus(pool, allocs.Items))
}

// computeStatus derives the whole status from the spec and the allocations.
func computeStatus(pool *berthv1.IPPool, allocs []berthv1.IPAllocation) berthv1.IPPoolStatus {
	st := berthv1.IPPoolStatus{AllocatedIPCount: int64(len(allocs)), ObservedGeneration: pool.Generation, Conditions: slices.Clone(pool.Status.Conditions)}
	ready := metav1.Condition{Type: ConditionReady, ObservedGeneration: pool.Generation}
	compiled, err := ranges.Compile(&pool.Spec)
	switch {
	case err != nil:
		// No phase fits a pool that cannot serve at all; the condition says why.
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "InvalidSpec", err.Error()
	default:
		st.TotalIPCount = compiled.Total()
		used := ranges.NewSet(compiled.Is4())
		for i := range allocs {
			if a, perr := netip.ParseAddr(allocs[i].Spec.IP); perr == nil {
				used.Add(a)
			}
		}
		free := compiled.Free(used)
		counts := fmt.Sprintf("%d of %d addresses allocated", compiled.Used(used), st.TotalIPCount)
		switch {
		case pool.Spec.Disable:
			st.Phase = berthv1.IPPoolDisabled
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "Disabled", "spec.disable is set; "+counts
		case free == 0:
			st.Phase = berthv1.IPPoolExhausted
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "Exhausted", counts
		default:
			st.Phase = berthv1.IPPoolReady
			ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, "Available", counts
		}
	}
	meta.SetStatusCondition(&st.Conditions, ready)
	meta.RemoveStatusCondition(&st.Conditions, ConditionDeletionBlocked)
	return st
}

func (r *poolReconciler) writeStatus(ctx context.Context, pool *berthv1.IPPool, st berthv1.IPPoolStatus) (ctrl.Result, error) {
	if statusEqual(pool.Status, st) {
		return ctrl.Result{}, nil
	}
	pool.Status = st
	if err := r.client.Status().Update(ctx, pool); err != nil {
		return requeueOnConflict(err, "writing the status of ippool %s", pool.Name)
	}
	return ctrl.Result{}, nil
}

// statusEqual compares what matters; condition times change only with
// their status, which SetStatusCondition already takes care of.
func statusEqual(a, b berthv1.IPPoolStatus) bool {
	if a.TotalIPCount != b.TotalIPCount || a.AllocatedIPCount != b.AllocatedIPCount || a.Phase != b.Phase || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
			return false
		}
	}
	return true
}

// deleting lets a pool go once it has no allocation, checked on the API
// server; until then it says in a condition and an event who holds what.
func (r *poolReconciler) deleting(ctx context.Context, pool *berthv1.IPPool, cached []berthv1.IPAllocation) (ctrl.Result, error) {
	i := slices.Index(pool.Finalizers, allocator.PoolFinalizer)
	if i < 0 {
		return ctrl.Result{}, nil
	}
	inUse := allocator.PoolInUse(pool.Name, cached)
	if inUse == nil {
		inUse = allocator.CheckPoolDeletion(ctx, r.apiReader, pool.Name)
	}
	if inUse == nil {
		pool.Finalizers = slices.Delete(pool.Finalizers, i, i+1)
		if err := r.client.Update(ctx, pool); err != nil {
			return requeueOnConflict(err, "removing the finalizer of ippool %s", pool.Name)
		}
		return ctrl.Result{}, nil
	}
	if _, ok := inUse.(*allocator.PoolInUseError); !ok {
		return ctrl.Result{}, inUse
	}
	st := *pool.Status.DeepCopy()
	st.AllocatedIPCount = int64(len(cached))
	blocked := metav1.Condition{Type: ConditionDeletionBlocked, Status: metav1.ConditionTrue, Reason: "AllocationsExist", Message: inUse.Error(), ObservedGeneration: pool.Generation}
	if old := meta.FindStatusCondition(st.Conditions, ConditionDeletionBlocked); old == nil || old.Message != blocked.Message {
		r.recorder.Eventf(pool, nil, corev1.EventTypeWarning, "DeletionBlocked", "Delete", "%s", inUse.Error())
	}
	meta.SetStatusCondition(&st.Conditions, blocked)
	return r.writeStatus(ctx, pool, st)
}

func requeueOnConflict(err error, format string, args ...any) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return ctrl.Result{}, fmt.Errorf(format+": %w", append(args, err)...)
}
