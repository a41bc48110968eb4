package allocator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// PoolFinalizer keeps an IPPool while IPAllocations of it exist; the pool
// controller adds it and removes it once the last one is gone.
const PoolFinalizer = "berth.io/allocations"

// PoolField is the field selector (and cache index) of an IPAllocation's
// pool. The API server serves it as a selectable field of the CRD; a cache
// needs IndexAllocationsByPool.
const PoolField = "spec.pool"

// IndexAllocationsByPool registers the PoolField index with a cache, so
// that CheckPoolDeletion and the pool controller can use a cached reader.
func IndexAllocationsByPool(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &berthv1.IPAllocation{}, PoolField, func(obj client.Object) []string {
		return []string{obj.(*berthv1.IPAllocation).Spec.Pool}
	})
	if err != nil {
		return fmt.Errorf("indexing ipallocations by pool: %w", err)
	}
	return nil
}

// ErrPoolInUse: an IPPool still has allocated addresses.
var ErrPoolInUse = errors.New("pool still has allocated addresses")

// maxNamedPods caps how many holders a PoolInUseError names.
const maxNamedPods = 5

// PoolInUseError says why an IPPool cannot go yet.
type PoolInUseError struct {
	Pool        string
	Allocations int
	// Pods are some of the holders (namespace/name), sorted; Sticky counts
	// reservations kept for StatefulSet pods.
	Pods     []string
	MorePods int
	Sticky   int
}

func (e *PoolInUseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ippool %q still has %d allocated address(es)", e.Pool, e.Allocations)
	if len(e.Pods) > 0 {
		fmt.Fprintf(&b, ", held by %s", strings.Join(e.Pods, ", "))
		if e.MorePods > 0 {
			fmt.Fprintf(&b, " and %d more pod(s)", e.MorePods)
		}
	}
	if e.Sticky > 0 {
		fmt.Fprintf(&b, " (%d kept for StatefulSet pods)", e.Sticky)
	}
	b.WriteString(": delete those pods (or scale their StatefulSets down) first")
	return b.String()
}

func (e *PoolInUseError) Unwrap() error { return ErrPoolInUse }

// CheckPoolDeletion returns a *PoolInUseError if the IPPool pool still has
// IPAllocations, nil if it may go. The validating webhook calls it to deny
// the DELETE up front; the pool controller's finalizer gives the same
// answer to deletions that got past it. reader is the API server or a cache
// with IndexAllocationsByPool.
func CheckPoolDeletion(ctx context.Context, reader client.Reader, pool string) error {
	list := &berthv1.IPAllocationList{}
	if err := reader.List(ctx, list, client.MatchingFields{PoolField: pool}); err != nil {
		return fmt.Errorf("listing the ipallocations of ippool %q: %w", pool, err)
	}
	return PoolInUse(pool, list.Items)
}

// PoolInUse builds the error for the allocations of pool, nil if none.
func PoolInUse(pool string, items []berthv1.IPAllocation) error {
	if len(items) == 0 {
		return nil
	}
	e := &PoolInUseError{Pool: pool, Allocations: len(items)}
	seen := map[string]bool{}
	var pods []string
	for i := range items {
		a := &items[i]
		if a.Spec.StickyKey != "" {
			e.Sticky++
		}
		if p := podString(a.Spec.PodRef); p != "" && !seen[p] {
			seen[p] = true
			pods = append(pods, p)
		}
	}
	sort.Strings(pods)
	if len(pods) > maxNamedPods {
		e.MorePods = len(pods) - maxNamedPods
		pods = pods[:maxNamedPods]
	}
	e.Pods = pods
	return e
}
