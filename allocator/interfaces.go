// Package allocator reserves pod addresses from IPPools at admission and
// gives them back when no live pod (or sticky StatefulSet identity) holds
// them. It owns invariants 1 to 3 of DESIGN.md: no address held twice, no
// address leaked beyond a bounded time, no object growing with a pool.
package allocator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Interface is what the admission webhook sees of the allocator. The
// persistence behind it (one IPAllocation per address today) can change
// without the webhook noticing.
type Interface interface {
	// Reserve durably reserves, for one pod interface, one address from the
	// first pool of each requested family that has one free (or the static
	// addresses asked for). Both families or neither: on any error nothing
	// stays reserved. For a StatefulSet pod the reservation is sticky and a
	// recreated pod of the same name gets the same addresses back.
	Reserve(ctx context.Context, req Request) ([]Reservation, error)
	// Release gives back reservations made by Reserve, e.g. when a later
	// step of the admission fails. Releasing what is already gone succeeds.
	Release(ctx context.Context, res []Reservation) error
}

// Request asks for the addresses of one pod interface.
type Request struct {
	// Pod is the pod under admission: it may have only a generateName and
	// never has a UID yet. Its owner references say whether it belongs to a
	// StatefulSet.
	Pod *corev1.Pod
	// AdmissionUID is the UID of the admission request; it ties the
	// reservation to the pod until the controller binds it to the pod's UID.
	AdmissionUID types.UID
	// Interface is the pod interface (net1) and Network its Network as
	// namespace/name.
	Interface string
	Network   string
	// IPv4Pools and IPv6Pools are candidate pools per family, tried in order.
	// A family with no pools is not requested.
	IPv4Pools []string
	IPv6Pools []string
	// StaticIPs are specific addresses (at most one per family) to reserve
	// instead of picking one; each must lie in one of that family's pools.
	StaticIPs []netip.Addr
}

// Reservation is one reserved address and what the pod needs to use it.
type Reservation struct {
	// Pool and Allocation name the IPPool and the IPAllocation holding it.
	Pool       string
	Allocation string
	// Address is the address with the pool's prefix length.
	Address netip.Prefix
	// Gateway is the pool's gateway; invalid if the pool has none.
	Gateway netip.Addr
	Routes  []berthv1.Route
	DNS     *berthv1.DNS
	// UID is the IPAllocation's UID: Release deletes only that object, never
	// a later reservation of the same address by another pod.
	UID types.UID
	// Reused is true when a sticky reservation of a StatefulSet pod was taken
	// over rather than created; Release leaves those for the controller to
	// keep or collect, so a failed admission does not lose a sticky address.
	Reused bool
}

// Usage is what the webhook reads of a pool's occupancy, from the
// allocator's in-memory view (current to the informers, plus this replica's
// own writes); *Allocator implements it.
type Usage interface {
	Usage(pool string) (total, allocated int64, ok bool)
}

// Sentinel errors; match them with errors.Is. The typed errors below carry
// the details and unwrap to these.
var (
	// ErrExhausted: no free address in any candidate pool of a family.
	ErrExhausted = errors.New("no free address")
	// ErrTaken: a requested static address is held by someone else.
	ErrTaken = errors.New("address already allocated")
	// ErrNotInPool: a requested static address lies in no candidate pool.
	ErrNotInPool = errors.New("address not in any candidate pool")
	// ErrPoolNotFound: a named pool does not exist.
	ErrPoolNotFound = errors.New("pool not found")
	// ErrPoolDisabled: a named pool has spec.disable set, or is being
	// deleted; either way it takes no new reservations.
	ErrPoolDisabled = errors.New("pool disabled")
	// ErrNotReady: the allocator's caches have not synced yet.
	ErrNotReady = errors.New("allocator not ready")
	// ErrPoolInvalid: a named pool's spec cannot be used (it does not
	// compile, or it is of the other IP family than requested).
	ErrPoolInvalid = errors.New("pool cannot serve the request")
	// ErrInvalidRequest: the request itself is malformed (no pod, no
	// interface, two static addresses of one family).
	ErrInvalidRequest = errors.New("invalid reservation request")
)

// ExhaustedError says which pools were full and how full.
type ExhaustedError struct {
	Pools     []string
	Total     int64
	Allocated int64
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("no free address in pools %v (%d of %d allocated)", e.Pools, e.Allocated, e.Total)
}

func (e *ExhaustedError) Unwrap() error { return ErrExhausted }

// TakenError names a requested address and who holds it.
type TakenError struct {
	Addr   netip.Addr
	Pool   string
	Holder string // namespace/name of the pod, or the IPAllocation name
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("address %s of pool %q is already allocated to %s", e.Addr, e.Pool, e.Holder)
}

func (e *TakenError) Unwrap() error { return ErrTaken }

// NotInPoolError names a requested address and the pools it is not in.
type NotInPoolError struct {
	Addr  netip.Addr
	Pools []string
}

func (e *NotInPoolError) Error() string {
	return fmt.Sprintf("address %s is not in pools %v (or is excluded there)", e.Addr, e.Pools)
}

func (e *NotInPoolError) Unwrap() error { return ErrNotInPool }
