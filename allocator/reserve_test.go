package allocator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// result is the outcome of one Reserve in a load test.
type result struct {
	res []allocator.Reservation
	err error
}

// reserveMany runs n Reserves spread over the instances, each instance with
// workers goroutines, and returns every outcome.
func reserveMany(ctx context.Context, insts []*instance, n, workers int, req func(i int) allocator.Request) []result {
	out := make([]result, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for _, inst := range insts {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					res, err := inst.Reserve(ctx, req(i))
					out[i] = result{res, err}
				}
			}()
		}
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func podRequest(pool string) func(i int) allocator.Request {
	return func(i int) allocator.Request {
		return allocator.Request{
			Pod: generatedPod("default", "load-"), AdmissionUID: types.UID(fmt.Sprintf("adm-%s-%d", pool, i)),
			Interface: "net1", Network: "default/storage", IPv4Pools: []string{pool},
		}
	}
}

// checkUnique fails on any address handed out twice, and checks that every
// successful reservation is the IPAllocation the API server holds.
func checkUnique(t *testing.T, pool string, results []result) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range results {
		for _, res := range r.res {
			a := res.Address.Addr().String()
			if seen[a] {
				t.Fatalf("address %s handed out twice", a)
			}
			seen[a] = true
		}
	}
	stored := map[string]bool{}
	for _, a := range allocationsOf(t, pool) {
		stored[a.Spec.IP] = true
		if a.Name != berthv1.AllocationName(pool, netip.MustParseAddr(a.Spec.IP)) {
			t.Fatalf("ipallocation %s does not lock %s", a.Name, a.Spec.IP)
		}
	}
	for a := range seen {
		if !stored[a] {
			t.Fatalf("reservation of %s has no IPAllocation in the API server", a)
		}
	}
	return stored
}

// TestTwoReplicasReserveEveryAddressOnce is invariant 1 under load: two
// allocator replicas take all 2000 addresses of a pool concurrently with no
// duplicate and no error; then, asked for 1500 addresses of a pool with
// 1000, exactly 1000 succeed and the rest get the exhaustion error.
func TestTwoReplicasReserveEveryAddressOnce(t *testing.T) {
	ctx := controlplane.Context(t, 5*time.Minute)
	insts := []*instance{newInstance(t, nil), newInstance(t, nil)}

	createPool(t, "load-full", berthv1.IPPoolSpec{Subnet: "10.20.0.0/20", IPs: []string{"10.20.0.10-10.20.8.9"}})
	results := reserveMany(ctx, insts, 2000, 16, podRequest("load-full"))
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("reserve %d: %v", i, r.err)
		}
	}
	if stored := checkUnique(t, "load-full", results); len(stored) != 2000 {
		t.Fatalf("%d IPAllocations stored, want 2000", len(stored))
	}

	createPool(t, "load-over", berthv1.IPPoolSpec{Subnet: "10.21.0.0/20", IPs: []string{"10.21.0.1-10.21.3.232"}})
	results = reserveMany(ctx, insts, 1500, 16, podRequest("load-over"))
	ok, exhausted := 0, 0
	for i, r := range results {
		var ex *allocator.ExhaustedError
		switch {
		case r.err == nil:
			ok++
		case errors.As(r.err, &ex) && errors.Is(r.err, allocator.ErrExhausted):
			exhausted++
			if ex.Total != 1000 || ex.Pools[0] != "load-over" {
				t.Fatalf("reserve %d: exhaustion error %q does not name the pool and its 1000 addresses", i, r.err)
			}
		default:
			t.Fatalf("reserve %d: %v", i, r.err)
		}
	}
	if ok != 1000 || exhausted != 500 {
		t.Fatalf("%d reserved and %d exhausted; want 1000 and 500", ok, exhausted)
	}
	if stored := checkUnique(t, "load-over", results); len(stored) != 1000 {
		t.Fatalf("%d IPAllocations stored, want 1000", len(stored))
	}
	for _, inst := range insts {
		waitUsage(t, inst, "load-over", 1000, 1000)
	}
}

func waitUsage(t *testing.T, inst *instance, pool string, total, allocated int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tot, all, ok := inst.Usage(pool)
		if ok && tot == total && all == allocated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Usage(%s) = %d, %d, %v; want %d, %d", pool, tot, all, ok, total, allocated)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maxObjectBytes bounds the JSON of any stored IPAllocation, managed fields
// included: invariant 3 says no object grows with its pool.
const maxObjectBytes = 2048

// TestLargePoolsKeepEveryObjectSmall reserves and releases dual-stack
// addresses from a /16 and a /64 and measures every object written: each
// IPAllocation stays small and the pools do not change at all.
func TestLargePoolsKeepEveryObjectSmall(t *testing.T) {
	ctx := controlplane.Context(t, 3*time.Minute)
	inst := newInstance(t, nil)
	v4 := createPool(t, "big-v4", berthv1.IPPoolSpec{Subnet: "10.30.0.0/16", Gateway: ptr.To("10.30.0.1"), DNS: &berthv1.DNS{Nameservers: []string{"10.30.0.53"}}})
	v6 := createPool(t, "big-v6", berthv1.IPPoolSpec{Subnet: "fd00:30::/64", Gateway: ptr.To("fd00:30::1"), Routes: []berthv1.Route{{Dst: "fd00:31::/64"}}})
	poolSize := func() map[string]int {
		out := map[string]int{}
		for _, p := range []*berthv1.IPPool{v4, v6} {
			got := &berthv1.IPPool{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
				t.Fatal(err)
			}
			out[p.Name] = jsonSize(t, got)
		}
		return out
	}
	before := poolSize()
	results := reserveMany(ctx, []*instance{inst}, 300, 8, func(i int) allocator.Request {
		return allocator.Request{
			Pod: pod("default", fmt.Sprintf("big-%d", i)), AdmissionUID: types.UID(fmt.Sprintf("big-%d", i)),
			Interface: "net1", Network: "default/big", IPv4Pools: []string{"big-v4"}, IPv6Pools: []string{"big-v6"},
		}
	})
	var all []allocator.Reservation
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("reserve %d: %v", i, r.err)
		}
		if len(r.res) != 2 || !r.res[0].Address.Addr().Is4() || !r.res[1].Address.Addr().Is6() {
			t.Fatalf("reserve %d: want one IPv4 then one IPv6 address, got %+v", i, r.res)
		}
		if r.res[0].Address.Bits() != 16 || r.res[1].Address.Bits() != 64 || r.res[0].Gateway.String() != "10.30.0.1" || r.res[0].DNS == nil || len(r.res[1].Routes) != 1 {
			t.Fatalf("reserve %d: prefix, gateway, DNS or routes not from the pool: %+v", i, r.res)
		}
		all = append(all, r.res...)
	}
	largest := 0
	for _, pool := range []string{"big-v4", "big-v6"} {
		items := allocationsOf(t, pool)
		if len(items) != 300 {
			t.Fatalf("%d IPAllocations of %s, want 300", len(items), pool)
		}
		for i := range items {
			if n := jsonSize(t, &items[i]); n > largest {
				largest = n
			}
		}
	}
	if largest > maxObjectBytes {
		t.Fatalf("the largest IPAllocation is %d bytes, more than %d", largest, maxObjectBytes)
	}
	if after := poolSize(); after["big-v4"] != before["big-v4"] || after["big-v6"] != before["big-v6"] {
		t.Fatalf("pool objects changed size with reservations: %v -> %v", before, after)
	}
	waitUsage(t, inst, "big-v4", 65533, 300)
	waitUsage(t, inst, "big-v6", 1<<63-1, 300)
	t.Logf("largest IPAllocation: %d bytes; pools: %v", largest, before)

	if err := inst.Release(ctx, all); err != nil {
		t.Fatal(err)
	}
	for _, pool := range []string{"big-v4", "big-v6"} {
		if n := len(allocationsOf(t, pool)); n != 0 {
			t.Fatalf("%d IPAllocations of %s left after release", n, pool)
		}
		if _, allocated, _ := inst.Usage(pool); allocated != 0 {
			t.Fatalf("Usage(%s) = %d allocated right after release: the view must apply its own deletes", pool, allocated)
		}
	}
	// Releasing again is a no-op, not an error.
	if err := inst.Release(ctx, all[:2]); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

func jsonSize(t testing.TB, obj any) int {
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}

// faultyStore fails the Creates of one pool with an internal error.
type faultyStore struct {
	allocator.Store
	failPool string
}

func (s *faultyStore) Create(ctx context.Context, obj *berthv1.IPAllocation) error {
	if obj.Spec.Pool == s.failPool {
		return apierrors.NewInternalError(errors.New("injected etcd failure"))
	}
	return s.Store.Create(ctx, obj)
}

// TestDualStackIsBothOrNeither: when the IPv6 half cannot be had, because
// the pool is full or the API server fails, the IPv4 half is given back.
func TestDualStackIsBothOrNeither(t *testing.T) {
	ctx := controlplane.Context(t, time.Minute)
	createPool(t, "ds-v4", berthv1.IPPoolSpec{Subnet: "10.40.0.0/24"})
	createPool(t, "ds-v6-full", berthv1.IPPoolSpec{Subnet: "fd00:40::/126"})
	createPool(t, "ds-v6", berthv1.IPPoolSpec{Subnet: "fd00:41::/120"})
	inst := newInstance(t, nil)
	for i := 0; i < 3; i++ {
		if _, err := inst.Reserve(ctx, allocator.Request{Pod: pod("default", fmt.Sprintf("fill-%d", i)), Interface: "net1", IPv6Pools: []string{"ds-v6-full"}}); err != nil {
			t.Fatal(err)
		}
	}
	faulty := newInstance(t, func(s allocator.Store) allocator.Store { return &faultyStore{Store: s, failPool: "ds-v6"} })
	tests := []struct {
		name string
		inst *instance
		v6   string
		want error
	}{
		{"IPv6 pool exhausted", inst, "ds-v6-full", allocator.ErrExhausted},
		{"API server fails the IPv6 create", faulty, "ds-v6", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.inst.Reserve(ctx, allocator.Request{Pod: pod("default", "ds"), Interface: "net1", IPv4Pools: []string{"ds-v4"}, IPv6Pools: []string{tt.v6}})
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || (tt.want == nil && !strings.Contains(err.Error(), "injected etcd failure")) {
				t.Fatalf("Reserve = %v, %v; want an error (%v)", res, err, tt.want)
			}
			if n := len(allocationsOf(t, "ds-v4")); n != 0 {
				t.Fatalf("%d IPv4 IPAllocations left after the IPv6 half failed", n)
			}
			if _, allocated, _ := tt.inst.Usage("ds-v4"); allocated != 0 {
				t.Fatalf("the view still counts %d IPv4 addresses", allocated)
			}
		})
	}
}

func TestStaticAddresses(t *testing.T) {
	ctx := controlplane.Context(t, time.Minute)
	createPool(t, "st-a", berthv1.IPPoolSpec{Subnet: "10.50.0.0/24", Gateway: ptr.To("10.50.0.1"), IPs: []string{"10.50.0.1-10.50.0.100"}, ExcludeIPs: []string{"10.50.0.50"}})
	createPool(t, "st-b", berthv1.IPPoolSpec{Subnet: "10.51.0.0/24"})
	createPool(t, "st-v6", berthv1.IPPoolSpec{Subnet: "fd00:50::/64"})
	inst := newInstance(t, nil)
	if _, err := inst.Reserve(ctx, allocator.Request{Pod: pod("team", "holder"), Interface: "net1", IPv4Pools: []string{"st-a"}, StaticIPs: []netip.Addr{netip.MustParseAddr("10.50.0.20")}}); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		v4, v6  []string
		static  []netip.Addr
		want    []string
		wantErr error
		errText string
	}{
		{name: "free and in the first pool", v4: []string{"st-a", "st-b"}, static: []netip.Addr{a("10.50.0.7")}, want: []string{"10.50.0.7/24"}},
		{name: "free and in the second pool", v4: []string{"st-a", "st-b"}, static: []netip.Addr{a("10.51.0.7")}, want: []string{"10.51.0.7/24"}},
		{name: "dual stack", v4: []string{"st-a"}, v6: []string{"st-v6"}, static: []netip.Addr{a("fd00:50::abcd"), a("10.50.0.8")}, want: []string{"10.50.0.8/24", "fd00:50::abcd/64"}},
		{name: "IPv4-mapped form is the IPv4 address", v4: []string{"st-a"}, static: []netip.Addr{a("::ffff:10.50.0.9")}, want: []string{"10.50.0.9/24"}},
		{name: "taken: names the holder", v4: []string{"st-a"}, static: []netip.Addr{a("10.50.0.20")}, wantErr: allocator.ErrTaken, errText: `address 10.50.0.20 of pool "st-a" is already allocated to team/holder`},
		{name: "outside the ranges", v4: []string{"st-a"}, static: []netip.Addr{a("10.50.0.200")}, wantErr: allocator.ErrNotInPool, errText: "address 10.50.0.200 is not in pools [st-a]"},
		{name: "excluded", v4: []string{"st-a"}, static: []netip.Addr{a("10.50.0.50")}, wantErr: allocator.ErrNotInPool},
		{name: "the gateway", v4: []string{"st-a"}, static: []netip.Addr{a("10.50.0.1")}, wantErr: allocator.ErrNotInPool},
		{name: "a family with no pools", v6: []string{"st-v6"}, static: []netip.Addr{a("10.50.0.9")}, wantErr: allocator.ErrNotInPool},
		{name: "an IPv6 address whose text ends in ::", v6: []string{"st-v6"}, static: []netip.Addr{a("fd00:50:0:0:1::")}, want: []string{"fd00:50:0:0:1::/64"}},
		{name: "two of one family", v4: []string{"st-a"}, static: []netip.Addr{a("10.50.0.10"), a("10.50.0.11")}, wantErr: allocator.ErrInvalidRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := inst.Reserve(ctx, allocator.Request{Pod: pod("team", fmt.Sprintf("static-%d", i)), Interface: "net1", IPv4Pools: tt.v4, IPv6Pools: tt.v6, StaticIPs: tt.static})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Reserve error = %v; want %v containing %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res {
				got = append(got, r.Address.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("reserved %v, want %v", got, tt.want)
			}
		})
	}
	var taken *allocator.TakenError
	_, err := inst.Reserve(ctx, allocator.Request{Pod: pod("team", "late"), Interface: "net1", IPv4Pools: []string{"st-a"}, StaticIPs: []netip.Addr{a("10.50.0.20")}})
	if !errors.As(err, &taken) || taken.Holder != "team/holder" || taken.Pool != "st-a" {
		t.Fatalf("TakenError = %#v", err)
	}
}

func TestPoolErrors(t *testing.T) {
	ctx := controlplane.Context(t, time.Minute)
	createPool(t, "pe-off", berthv1.IPPoolSpec{Subnet: "10.60.0.0/24", Disable: true})
	createPool(t, "pe-on", berthv1.IPPoolSpec{Subnet: "10.61.0.0/30"})
	createPool(t, "pe-v6", berthv1.IPPoolSpec{Subnet: "fd00:60::/64"})
	inst := newInstance(t, nil)
	// A pool created after the instance started is usable at once, even
	// before its informer event arrives (read from the API server).
	createPool(t, "pe-new", berthv1.IPPoolSpec{Subnet: "10.62.0.0/24"})
	tests := []struct {
		name    string
		v4, v6  []string
		want    string // the address prefix when it succeeds
		wantErr error
		errText string
	}{
		{name: "brand-new pool", v4: []string{"pe-new"}, want: "10.62.0."},
		{name: "unknown pool", v4: []string{"pe-nope", "pe-on"}, wantErr: allocator.ErrPoolNotFound, errText: `ippool "pe-nope"`},
		{name: "disabled pool alone", v4: []string{"pe-off"}, wantErr: allocator.ErrPoolDisabled, errText: `ippool "pe-off" has spec.disable set`},
		{name: "disabled pool is skipped", v4: []string{"pe-off", "pe-on"}, want: "10.61.0."},
		{name: "pool of the other family", v4: []string{"pe-v6"}, wantErr: allocator.ErrPoolInvalid, errText: `ippool "pe-v6": pool cannot serve the request: it is IPv6 (spec.subnet fd00:60::/64), requested for IPv4`},
		{name: "second from the /30", v4: []string{"pe-on"}, want: "10.61.0."},
		{name: "exhausted: names pools and counts", v4: []string{"pe-off", "pe-on"}, wantErr: allocator.ErrExhausted, errText: "no free address in pools [pe-on] (2 of 2 allocated)"},
		{name: "no interface", wantErr: allocator.ErrInvalidRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := allocator.Request{Pod: pod("default", fmt.Sprintf("pe-%d", i)), Interface: "net1", IPv4Pools: tt.v4, IPv6Pools: tt.v6}
			if tt.name == "no interface" {
				req.Interface = ""
			}
			res, err := inst.Reserve(ctx, req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Reserve error = %v; want %v containing %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil || len(res) != 1 || !strings.HasPrefix(res[0].Address.String(), tt.want) {
				t.Fatalf("Reserve = %+v, %v; want an address in %s", res, err, tt.want)
			}
		})
	}
}

// TestEveryIPv6AddressIsLockable: in fd00:70::/127 (both addresses usable,
// RFC 6164) fd00:70:: has a text ending in "::", whose IPAllocation name
// needs the padding of AllocationName; both addresses are handed out, then
// the pool is full.
func TestEveryIPv6AddressIsLockable(t *testing.T) {
	ctx := controlplane.Context(t, time.Minute)
	createPool(t, "edge-v6", berthv1.IPPoolSpec{Subnet: "fd00:70::/127"})
	inst := newInstance(t, nil)
	got := map[string]bool{}
	for i := range 3 {
		res, err := inst.Reserve(ctx, allocator.Request{Pod: pod("default", fmt.Sprintf("u-%d", i)), Interface: "net1", IPv6Pools: []string{"edge-v6"}})
		if i == 2 {
			if !errors.Is(err, allocator.ErrExhausted) {
				t.Fatalf("third Reserve = %v, %v; want exhausted", res, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Reserve %d: %v", i, err)
		}
		got[res[0].Address.String()] = true
	}
	if !got["fd00:70::/127"] || !got["fd00:70::1/127"] {
		t.Errorf("reserved %v, want fd00:70::/127 and fd00:70::1/127", got)
	}
}

// TestNotReadyUntilSynced: a replica whose informers have not synced
// refuses instead of guessing.
func TestNotReadyUntilSynced(t *testing.T) {
	c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	informers, err := newUnstartedCache()
	if err != nil {
		t.Fatal(err)
	}
	a, err := allocator.New(t.Context(), allocator.Options{Informers: informers, Store: &allocator.APIStore{Writer: c, Reader: c}, APIReader: c})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(t.Context(), allocator.Request{Pod: pod("default", "x"), Interface: "net1", IPv4Pools: []string{"pe-on"}}); !errors.Is(err, allocator.ErrNotReady) {
		t.Fatalf("Reserve before sync = %v, want ErrNotReady", err)
	}
}
