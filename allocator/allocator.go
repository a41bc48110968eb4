package allocator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator/ranges"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// rollbackTimeout bounds the cleanup of a failed Reserve, which runs even
// when the caller's context has ended.
const rollbackTimeout = 10 * time.Second

// Options are what an Allocator is built from.
type Options struct {
	// Informers is the cache (usually the manager's) whose IPPool and
	// IPAllocation informers feed the allocator's view.
	Informers cache.Informers
	// Store persists reservations.
	Store Store
	// APIReader reads IPPools the cache has not shown yet (a pool created
	// a moment ago) straight from the API server.
	APIReader client.Reader
	// Rand picks start offsets; nil means a ChaCha8 seeded at random.
	Rand ranges.Rand
	// Clock is for the view's timeouts; nil means the real clock.
	Clock clock.PassiveClock
	Log   logr.Logger
}

// Allocator reserves addresses by creating IPAllocations, choosing
// candidates from an informer-fed view. Replicas share nothing but the API
// server: Create of the IPAllocation, whose name is the address, is the
// lock.
type Allocator struct {
	view      *view
	store     Store
	apiReader client.Reader
	log       logr.Logger

	randMu sync.Mutex
	rand   ranges.Rand

	synced []func() bool
}

var (
	_ Interface = &Allocator{}
	_ Usage     = &Allocator{}
)

// New builds an Allocator and registers its handlers with the informers. It
// serves once the informers have synced (Ready); the cache must be started
// by the caller (the manager).
func New(ctx context.Context, opts Options) (*Allocator, error) {
	if opts.Informers == nil || opts.Store == nil || opts.APIReader == nil {
		return nil, errors.New("allocator: Informers, Store and APIReader are required")
	}
	c := opts.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	r := opts.Rand
	if r == nil {
		r = rand.New(rand.NewChaCha8(seed()))
	}
	a := &Allocator{view: newView(c), store: opts.Store, apiReader: opts.APIReader, log: opts.Log, rand: r}
	for _, w := range []struct {
		obj     client.Object
		handler toolscache.ResourceEventHandler
	}{
		{&berthv1.IPPool{}, a.view.poolHandler()},
		{&berthv1.IPAllocation{}, a.view.allocationHandler()},
	} {
		inf, err := opts.Informers.GetInformer(ctx, w.obj, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, fmt.Errorf("allocator: getting the informer of %T: %w", w.obj, err)
		}
		reg, err := inf.AddEventHandler(w.handler)
		if err != nil {
			return nil, fmt.Errorf("allocator: watching %T: %w", w.obj, err)
		}
		a.synced = append(a.synced, reg.HasSynced)
	}
	return a, nil
}

func seed() [32]byte {
	var s [32]byte
	for i := 0; i < 4; i++ {
		v := rand.Uint64() // the runtime seeds the global source at random
		for j := 0; j < 8; j++ {
			s[i*8+j] = byte(v >> (8 * j))
		}
	}
	return s
}

// Ready reports whether the view has caught up with the API server, for a
// readiness probe; Reserve refuses with ErrNotReady until then.
func (a *Allocator) Ready() bool {
	for _, s := range a.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Usage implements Usage.
func (a *Allocator) Usage(pool string) (total, allocated int64, ok bool) {
	return a.view.usage(pool)
}

func (a *Allocator) randomStart(p *ranges.Pool) netip.Addr {
	a.randMu.Lock()
	defer a.randMu.Unlock()
	return p.RandomStart(a.rand)
}

// Reserve implements Interface.
func (a *Allocator) Reserve(ctx context.Context, req Request) (_ []Reservation, err error) {
	if !a.Ready() {
		return nil, ErrNotReady
	}
	if req.Pod == nil || req.Pod.Namespace == "" {
		return nil, fmt.Errorf("%w: the pod and its namespace are required", ErrInvalidRequest)
	}
	if req.Interface == "" {
		return nil, fmt.Errorf("%w: pod %s: the interface name is required", ErrInvalidRequest, podName(req))
	}
	static := [2]netip.Addr{}
	for _, ip := range req.StaticIPs {
		ip = ip.Unmap()
		if !ip.IsValid() {
			return nil, fmt.Errorf("%w: pod %s interface %s: an invalid static address", ErrInvalidRequest, podName(req), req.Interface)
		}
		if static[familyIndex(ip)].IsValid() {
			return nil, fmt.Errorf("%w: pod %s interface %s: static addresses %s and %s are of the same IP family", ErrInvalidRequest, podName(req), req.Interface, static[familyIndex(ip)], ip)
		}
		static[familyIndex(ip)] = ip
	}
	var done []Reservation
	defer func() {
		if err != nil && len(done) > 0 {
			// Both families or neither: give back what this call took, even
			// if the caller's context is over.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			if rerr := a.Release(rctx, done); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rolling back the reservation of the other family: %w", rerr))
			}
		}
	}()
	key := StickyKey(req.Pod, req.Interface)
	for i, pools := range [2][]string{req.IPv4Pools, req.IPv6Pools} {
		if len(pools) == 0 {
			if static[i].IsValid() {
				return nil, &NotInPoolError{Addr: static[i]}
			}
			continue
		}
		r, err := a.reserveFamily(ctx, &req, i == 0, pools, static[i], key)
		if err != nil {
			return nil, err
		}
		done = append(done, r)
	}
	return done, nil
}

func podName(req Request) string {
	if req.Pod.Name != "" {
		return req.Pod.Namespace + "/" + req.Pod.Name
	}
	return req.Pod.Namespace + "/" + req.Pod.GenerateName + "*"
}

// candidate is a pool resolved for one family.
type candidate struct {
	name     string
	obj      *berthv1.IPPool
	compiled *ranges.Pool
}

// resolve looks the pools up, from the view or else the API server, and
// checks their family. Unknown and unusable pools are errors: they are
// configuration mistakes, not a reason to fall through to the next pool.
func (a *Allocator) resolve(ctx context.Context, names []string, is4 bool) ([]candidate, error) {
	family := map[bool]string{true: "IPv4", false: "IPv6"}
	out := make([]candidate, 0, len(names))
	for _, name := range names {
		snap, ok := a.view.poolSnapshot(name)
		if !ok {
			pool := &berthv1.IPPool{}
			if err := a.apiReader.Get(ctx, client.ObjectKey{Name: name}, pool); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("ippool %q: %w", name, ErrPoolNotFound)
				}
				return nil, fmt.Errorf("reading ippool %q: %w", name, err)
			}
			snap.obj = pool
			snap.compiled, snap.compileErr = ranges.Compile(&pool.Spec)
		}
		if snap.compileErr != nil {
			return nil, fmt.Errorf("ippool %q: %w: %w", name, ErrPoolInvalid, snap.compileErr)
		}
		if snap.compiled.Is4() != is4 {
			return nil, fmt.Errorf("ippool %q: %w: it is %s (spec.subnet %s), requested for %s", name, ErrPoolInvalid, family[!is4], snap.obj.Spec.Subnet, family[is4])
		}
		out = append(out, candidate{name: name, obj: snap.obj, compiled: snap.compiled})
	}
	return out, nil
}

// unusable says why a pool takes no new reservations, or nil.
func unusable(c candidate) error {
	switch {
	case c.obj.DeletionTimestamp != nil:
		return fmt.Errorf("ippool %q is being deleted: %w", c.name, ErrPoolDisabled)
	case c.obj.Spec.Disable:
		return fmt.Errorf("ippool %q has spec.disable set: %w", c.name, ErrPoolDisabled)
	}
	return nil
}

func (a *Allocator) reserveFamily(ctx context.Context, req *Request, is4 bool, names []string, static netip.Addr, key string) (Reservation, error) {
	pools, err := a.resolve(ctx, names, is4)
	if err != nil {
		return Reservation{}, err
	}
	if key != "" {
		r, ok, err := a.reuseSticky(ctx, req, pools, static, key)
		if err != nil || ok {
			return r, err
		}
	}
	if static.IsValid() {
		return a.reserveStatic(ctx, req, pools, names, static, key)
	}
	var disabled error
	exhausted := &ExhaustedError{}
	for _, c := range pools {
		if err := unusable(c); err != nil {
			disabled = errors.Join(disabled, err)
			continue
		}
		r, err := a.reserveFrom(ctx, req, c, key)
		if errors.Is(err, ranges.ErrNoFree) {
			total, allocated := a.view.counts(c.name, c.compiled)
			exhausted.Pools = append(exhausted.Pools, c.name)
			exhausted.Total += total
			exhausted.Allocated += allocated
			continue
		}
		return r, err
	}
	if len(exhausted.Pools) > 0 {
		return Reservation{}, exhausted
	}
	return Reservation{}, disabled
}

// reserveFrom walks pool c from a random start, creating the IPAllocation
// of each candidate until one Create succeeds. AlreadyExists means another
// replica (or an informer event not seen yet) got there first: the view
// marks the address and the walk goes on. Any other error stops.
func (a *Allocator) reserveFrom(ctx context.Context, req *Request, c candidate, key string) (Reservation, error) {
	start := a.randomStart(c.compiled)
	for {
		if err := ctx.Err(); err != nil {
			return Reservation{}, fmt.Errorf("reserving from ippool %q: %w", c.name, err)
		}
		addr, err := a.view.pick(c.name, c.compiled, start)
		if err != nil {
			return Reservation{}, err
		}
		r, err := a.create(ctx, req, c, addr, key)
		if err == nil {
			return r, nil
		}
		if apierrors.IsAlreadyExists(err) {
			a.view.taken(c.name, addr)
			start = addr.Next()
			continue
		}
		a.view.unpick(c.name, addr)
		a.undoUncertain(ctx, req, c.name, addr)
		return Reservation{}, fmt.Errorf("reserving %s from ippool %q: %w", addr, c.name, err)
	}
}

func (a *Allocator) reserveStatic(ctx context.Context, req *Request, pools []candidate, names []string, addr netip.Addr, key string) (Reservation, error) {
	for _, c := range pools {
		if !c.compiled.Contains(addr) {
			continue
		}
		if err := unusable(c); err != nil {
			return Reservation{}, err
		}
		if h, ok := a.view.claim(c.name, addr); !ok {
			return Reservation{}, a.takenError(ctx, c.name, addr, h)
		}
		r, err := a.create(ctx, req, c, addr, key)
		if err == nil {
			return r, nil
		}
		if apierrors.IsAlreadyExists(err) {
			a.view.taken(c.name, addr)
			return Reservation{}, a.takenError(ctx, c.name, addr, nil)
		}
		a.view.unpick(c.name, addr)
		a.undoUncertain(ctx, req, c.name, addr)
		return Reservation{}, fmt.Errorf("reserving static address %s from ippool %q: %w", addr, c.name, err)
	}
	return Reservation{}, &NotInPoolError{Addr: addr, Pools: names}
}

// undoUncertain runs after a Create failed without saying whether it took
// effect (a cut connection, a timeout, the caller's context ending): if the
// object exists and is this request's, it is deleted now rather than by the
// TTL. Failing that too, the TTL remains the backstop (invariant 2).
func (a *Allocator) undoUncertain(ctx context.Context, req *Request, pool string, addr netip.Addr) {
	if req.AdmissionUID == "" {
		return // nothing tells this request's object from another's
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	name := berthv1.AllocationName(pool, addr)
	obj, err := a.store.Get(ctx, name)
	if err != nil {
		return
	}
	if obj.Spec.AdmissionUID != req.AdmissionUID || obj.Spec.Interface != req.Interface || obj.Spec.Phase != berthv1.AllocationReserved {
		return
	}
	if err := a.store.Delete(ctx, name, obj.UID); err != nil {
		a.log.V(1).Info("leaving an uncertain reservation to the TTL", "ipallocation", name, "error", err.Error())
		return
	}
	a.view.deleteAllocation(pool, addr, name, obj.UID)
}

// takenError names the holder of addr, from the view or the API server.
func (a *Allocator) takenError(ctx context.Context, pool string, addr netip.Addr, h *holder) error {
	name := berthv1.AllocationName(pool, addr)
	holder := ""
	if h != nil {
		holder = h.pod
	}
	if holder == "" {
		if obj, err := a.store.Get(ctx, name); err == nil {
			holder = podString(obj.Spec.PodRef)
		}
	}
	if holder == "" {
		holder = "ipallocation " + name
	}
	return &TakenError{Addr: addr, Pool: pool, Holder: holder}
}

// create stores the IPAllocation of addr for req.
func (a *Allocator) create(ctx context.Context, req *Request, c candidate, addr netip.Addr, key string) (Reservation, error) {
	obj := &berthv1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName(c.name, addr)},
		Spec: berthv1.IPAllocationSpec{
			Pool:         c.name,
			IP:           addr.String(),
			Phase:        berthv1.AllocationReserved,
			PodRef:       &berthv1.PodReference{Namespace: req.Pod.Namespace, Name: req.Pod.Name, GenerateName: req.Pod.GenerateName},
			AdmissionUID: req.AdmissionUID,
			Interface:    req.Interface,
			Network:      req.Network,
			StickyKey:    key,
		},
	}
	if key != "" {
		obj.Finalizers = []string{StickyFinalizer}
	}
	if err := a.store.Create(ctx, obj); err != nil {
		return Reservation{}, err
	}
	a.view.settle(obj)
	return reservation(c.obj, obj, addr, false), nil
}

func reservation(pool *berthv1.IPPool, obj *berthv1.IPAllocation, addr netip.Addr, reused bool) Reservation {
	r := Reservation{
		Pool:       pool.Name,
		Allocation: obj.Name,
		Address:    netip.PrefixFrom(addr, netip.MustParsePrefix(pool.Spec.Subnet).Bits()),
		// Deep copies: pool is the informer cache's object, shared and
		// read-only; the caller may change what it gets.
		Routes: pool.Spec.DeepCopy().Routes,
		DNS:    pool.Spec.DNS.DeepCopy(),
		UID:    obj.UID,
		Reused: reused,
	}
	if pool.Spec.Gateway != nil {
		r.Gateway, _ = netip.ParseAddr(*pool.Spec.Gateway)
	}
	return r
}

// reuseSticky takes over the sticky reservation of key in one of pools (the
// one holding static, if given): the recreated StatefulSet pod gets its
// address back. ok is false when there is none to take over.
func (a *Allocator) reuseSticky(ctx context.Context, req *Request, pools []candidate, static netip.Addr, key string) (Reservation, bool, error) {
	refs := a.view.stickyAllocations(key)
	for _, c := range pools {
		for name, ref := range refs {
			// A disabled pool keeps what it has, sticky addresses included;
			// a pool being deleted gives nothing out again.
			if ref.pool != c.name || ref.deleting || (static.IsValid() && ref.addr != static) || c.obj.DeletionTimestamp != nil {
				continue
			}
			obj, err := a.store.Get(ctx, name)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return Reservation{}, false, fmt.Errorf("reading sticky ipallocation %q: %w", name, err)
			}
			if obj.DeletionTimestamp != nil || obj.Spec.StickyKey != key {
				continue
			}
			obj.Spec.Phase = berthv1.AllocationReserved
			obj.Spec.PodRef = &berthv1.PodReference{Namespace: req.Pod.Namespace, Name: req.Pod.Name}
			obj.Spec.AdmissionUID = req.AdmissionUID
			obj.Spec.Network = req.Network
			obj.Spec.Node = ""
			if err := a.store.Update(ctx, obj); err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					// Released or changed meanwhile: reserve afresh.
					continue
				}
				return Reservation{}, false, fmt.Errorf("taking over sticky ipallocation %q: %w", name, err)
			}
			if obj.DeletionTimestamp != nil {
				continue
			}
			a.view.setAllocation(obj)
			return reservation(c.obj, obj, ref.addr, true), true, nil
		}
	}
	return Reservation{}, false, nil
}

// Release implements Interface. Reused sticky reservations stay: the
// controller keeps them while the StatefulSet wants the pod.
func (a *Allocator) Release(ctx context.Context, res []Reservation) error {
	var errs []error
	for _, r := range res {
		if r.Reused {
			continue
		}
		if err := a.store.Delete(ctx, r.Allocation, r.UID); err != nil {
			errs = append(errs, fmt.Errorf("releasing %s of ippool %q: %w", r.Address.Addr(), r.Pool, err))
			continue
		}
		if r.UID != "" {
			a.view.deleteAllocation(r.Pool, r.Address.Addr(), r.Allocation, r.UID)
		}
	}
	return errors.Join(errs...)
}
