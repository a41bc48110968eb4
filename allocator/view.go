package allocator

import (
	"net/netip"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/berth-io/berth/allocator/ranges"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// unknownTTL bounds how long an address that answered AlreadyExists stays
// marked used without the informer ever showing its holder: if the holder
// was created and deleted between two relists the informer never reports
// it, and the mark must not hide a free address forever.
const unknownTTL = 30 * time.Second

// view is the allocator's in-memory picture of pools and their used
// addresses: fed by the IPPool and IPAllocation informers, and updated at
// once with this replica's own writes because informers lag. It only
// steers the choice of candidates; the Create of the IPAllocation decides.
type view struct {
	clock clock.PassiveClock

	mu    sync.Mutex
	pools map[string]*poolView
	// sticky maps a sticky key to the allocations carrying it.
	sticky map[string]map[string]stickyRef
}

type stickyRef struct {
	pool     string
	addr     netip.Addr
	deleting bool
}

type poolView struct {
	obj        *berthv1.IPPool // nil while the informer has not shown it
	compiled   *ranges.Pool
	compileErr error
	used       [2]*ranges.Set // [0] IPv4, [1] IPv6
	holders    map[netip.Addr]*holder
	unknown    map[netip.Addr]time.Time
}

// holder is what the view knows of an IPAllocation.
type holder struct {
	uid    types.UID // empty: not yet known
	pod    string    // namespace/name, for error messages
	sticky string
	// pending: this replica is creating it right now.
	pending bool
}

func newView(c clock.PassiveClock) *view {
	return &view{clock: c, pools: map[string]*poolView{}, sticky: map[string]map[string]stickyRef{}}
}

func (v *view) pool(name string) *poolView {
	p := v.pools[name]
	if p == nil {
		p = &poolView{holders: map[netip.Addr]*holder{}, unknown: map[netip.Addr]time.Time{}}
		v.pools[name] = p
	}
	return p
}

func familyIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

func (p *poolView) set(a netip.Addr) *ranges.Set {
	i := familyIndex(a)
	if p.used[i] == nil {
		p.used[i] = ranges.NewSet(a.Is4())
	}
	return p.used[i]
}

// snapshot is what Reserve needs of a pool, copied under the lock.
type poolSnapshot struct {
	obj        *berthv1.IPPool
	compiled   *ranges.Pool
	compileErr error
}

func (v *view) poolSnapshot(name string) (poolSnapshot, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pools[name]
	if p == nil || p.obj == nil {
		return poolSnapshot{}, false
	}
	return poolSnapshot{obj: p.obj, compiled: p.compiled, compileErr: p.compileErr}, true
}

// setPool records an IPPool from the informer.
func (v *view) setPool(obj *berthv1.IPPool) {
	compiled, err := ranges.Compile(&obj.Spec)
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(obj.Name)
	p.obj, p.compiled, p.compileErr = obj, compiled, err
}

func (v *view) deletePool(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := v.pools[name]; p != nil {
		p.obj, p.compiled, p.compileErr = nil, nil, nil
	}
}

func podString(ref *berthv1.PodReference) string {
	switch {
	case ref == nil:
		return ""
	case ref.Name != "":
		return ref.Namespace + "/" + ref.Name
	default:
		return ref.Namespace + "/" + ref.GenerateName + "*"
	}
}

// setAllocation records an IPAllocation from the informer or from this
// replica's own successful Create or Update.
func (v *view) setAllocation(obj *berthv1.IPAllocation) {
	addr, err := netip.ParseAddr(obj.Spec.IP)
	if err != nil {
		return // the API server's CEL rule makes this unreachable
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(obj.Spec.Pool)
	h := p.holders[addr]
	if h == nil {
		h = &holder{}
		p.holders[addr] = h
		p.set(addr).Add(addr)
	}
	if h.sticky != "" && h.sticky != obj.Spec.StickyKey {
		v.dropSticky(h.sticky, obj.Name)
	}
	h.uid, h.pod, h.sticky = obj.UID, podString(obj.Spec.PodRef), obj.Spec.StickyKey
	delete(p.unknown, addr)
	if h.sticky != "" {
		refs := v.sticky[h.sticky]
		if refs == nil {
			refs = map[string]stickyRef{}
			v.sticky[h.sticky] = refs
		}
		refs[obj.Name] = stickyRef{pool: obj.Spec.Pool, addr: addr, deleting: obj.DeletionTimestamp != nil}
	}
}

func (v *view) dropSticky(key, name string) {
	if refs := v.sticky[key]; refs != nil {
		delete(refs, name)
		if len(refs) == 0 {
			delete(v.sticky, key)
		}
	}
}

// deleteAllocation forgets the IPAllocation of pool/addr with this uid. A
// delete of an older object of the same name (uid mismatch) is ignored, and
// so is one racing this replica's own Create.
func (v *view) deleteAllocation(pool string, addr netip.Addr, name string, uid types.UID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pools[pool]
	if p == nil {
		return
	}
	h := p.holders[addr]
	if h == nil {
		return
	}
	if h.pending {
		if h.uid == uid {
			h.uid = ""
		}
		return
	}
	if h.uid != uid && h.uid != "" {
		return
	}
	if h.sticky != "" {
		v.dropSticky(h.sticky, name)
	}
	delete(p.holders, addr)
	delete(p.unknown, addr)
	p.set(addr).Remove(addr)
}

// pick chooses a free address of pool c from start and marks it pending, so
// that concurrent Reserves of this replica do not race for it.
func (v *view) pick(name string, c *ranges.Pool, start netip.Addr) (netip.Addr, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(name)
	v.expireUnknown(p)
	used := p.set(c.Prefix().Addr())
	a, err := c.Next(used, start)
	if err != nil {
		return a, err
	}
	used.Add(a)
	p.holders[a] = &holder{pending: true}
	return a, nil
}

// claim marks a specific address pending; false if the view sees it used.
func (v *view) claim(name string, a netip.Addr) (*holder, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(name)
	v.expireUnknown(p)
	if h := p.holders[a]; h != nil {
		cp := *h
		return &cp, false
	}
	p.set(a).Add(a)
	p.holders[a] = &holder{pending: true}
	return nil, true
}

func (v *view) expireUnknown(p *poolView) {
	now := v.clock.Now()
	for a, since := range p.unknown {
		if now.Sub(since) < unknownTTL {
			continue
		}
		delete(p.unknown, a)
		if h := p.holders[a]; h != nil && h.uid == "" && !h.pending {
			delete(p.holders, a)
			p.set(a).Remove(a)
		}
	}
}

// taken settles a pending address whose Create answered AlreadyExists.
func (v *view) taken(name string, a netip.Addr) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(name)
	h := p.holders[a]
	if h == nil {
		h = &holder{}
		p.holders[a] = h
		p.set(a).Add(a)
	}
	h.pending = false
	if h.uid == "" {
		p.unknown[a] = v.clock.Now()
	}
}

// unpick undoes a pending mark after a failed Create.
func (v *view) unpick(name string, a netip.Addr) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pool(name)
	h := p.holders[a]
	if h == nil || !h.pending {
		return
	}
	if h.uid != "" {
		h.pending = false // the informer showed a holder meanwhile
		return
	}
	delete(p.holders, a)
	p.set(a).Remove(a)
}

// settle records this replica's successful Create of a pending address.
func (v *view) settle(obj *berthv1.IPAllocation) {
	addr, _ := netip.ParseAddr(obj.Spec.IP)
	v.mu.Lock()
	if h := v.pools[obj.Spec.Pool].holders[addr]; h != nil {
		h.pending = false
	}
	v.mu.Unlock()
	v.setAllocation(obj)
}

func (v *view) holderOf(pool string, a netip.Addr) (holder, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := v.pools[pool]; p != nil {
		if h := p.holders[a]; h != nil {
			return *h, true
		}
	}
	return holder{}, false
}

// stickyAllocations returns the allocations carrying key.
func (v *view) stickyAllocations(key string) map[string]stickyRef {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]stickyRef, len(v.sticky[key]))
	for name, ref := range v.sticky[key] {
		out[name] = ref
	}
	return out
}

// counts measures compiled (the pool's spec, however it was read) against
// the view's used addresses of pool name.
func (v *view) counts(name string, compiled *ranges.Pool) (total, allocated int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return compiled.Total(), compiled.Used(v.pool(name).set(compiled.Prefix().Addr()))
}

// usage counts a pool's addresses; ok is false for a pool the view lacks.
func (v *view) usage(name string) (total, allocated int64, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pools[name]
	if p == nil || p.compiled == nil {
		return 0, 0, false
	}
	used := p.set(p.compiled.Prefix().Addr())
	return p.compiled.Total(), p.compiled.Used(used), true
}

// handlers are the informer event handlers feeding the view.
func (v *view) poolHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { v.onPool(obj, false) },
		UpdateFunc: func(_, obj any) { v.onPool(obj, false) },
		DeleteFunc: func(obj any) { v.onPool(obj, true) },
	}
}

func (v *view) onPool(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pool, ok := obj.(*berthv1.IPPool)
	if !ok {
		return
	}
	if deleted {
		v.deletePool(pool.Name)
		return
	}
	v.setPool(pool)
}

func (v *view) allocationHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { v.onAllocation(obj, false) },
		UpdateFunc: func(_, obj any) { v.onAllocation(obj, false) },
		DeleteFunc: func(obj any) { v.onAllocation(obj, true) },
	}
}

func (v *view) onAllocation(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	a, ok := obj.(*berthv1.IPAllocation)
	if !ok {
		return
	}
	if !deleted {
		v.setAllocation(a)
		return
	}
	if addr, err := netip.ParseAddr(a.Spec.IP); err == nil {
		v.deleteAllocation(a.Spec.Pool, addr, a.Name, a.UID)
	}
}
