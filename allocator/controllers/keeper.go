package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Keeper answers, on the API server's word, whether an IPAllocation must be
// kept: the decision the allocation controller takes before it releases
// one. The validating webhook asks it before letting anyone else delete an
// IPAllocation, so that a deletion by hand cannot free an address a pod
// still uses (invariant 1: another pod would get it).
type Keeper struct {
	// APIReader reads pods and StatefulSets from the API server, not a cache.
	APIReader client.Reader
	// TTL is the reservation TTL of the controllers; DefaultReservationTTL
	// when zero.
	TTL time.Duration
	// Clock is the real clock when nil.
	Clock clock.PassiveClock
}

// Why returns why alloc is kept, or "" when nothing holds it: a live pod
// lists it, it is a reservation younger than the TTL whose pod may still be
// being stored, or it is sticky and its StatefulSet still wants the pod.
func (k *Keeper) Why(ctx context.Context, alloc *berthv1.IPAllocation) (string, error) {
	ttl, clk := k.TTL, k.Clock
	if ttl <= 0 {
		ttl = DefaultReservationTTL
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if wait := reservationWait(alloc, clk, ttl); wait > 0 {
		return fmt.Sprintf("reserved %s ago at the admission of pod %s, which may still be being stored; Berth releases it %s after the admission if no pod holds it",
			(ttl - wait).Round(time.Second), podName(alloc.Spec.PodRef), ttl), nil
	}
	r := &allocationReconciler{apiReader: k.APIReader}
	pod, err := r.holder(ctx, alloc, true)
	if err != nil {
		return "", err
	}
	if pod != nil {
		return fmt.Sprintf("in use by pod %s/%s", pod.Namespace, pod.Name), nil
	}
	if alloc.Spec.StickyKey != "" {
		keep, err := r.stickyKeep(ctx, k.APIReader, alloc)
		if err != nil {
			return "", err
		}
		if keep {
			s, _ := allocator.ParseStickyKey(alloc.Spec.StickyKey)
			return fmt.Sprintf("kept for pod %s/%s of StatefulSet %s (a sticky address: the pod gets it back when it is recreated)", s.Namespace, s.Pod, s.StatefulSet), nil
		}
	}
	return "", nil
}
