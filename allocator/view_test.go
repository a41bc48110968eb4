package allocator

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-io/berth/allocator/ranges"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// TestViewFollowsEventsAndOwnWrites replays the orderings informers and
// this replica's own writes can interleave in, and checks which addresses
// the view then offers. The view only steers candidates (the Create
// decides), but a view that hides a free address forever would make a
// pool look exhausted, and one that offers a held address costs a wasted
// Create each time.
func TestViewFollowsEventsAndOwnWrites(t *testing.T) {
	a1 := netip.MustParseAddr("10.0.0.1")
	alloc := func(uid string) *berthv1.IPAllocation {
		return &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: "p.10.0.0.1", UID: types.UID(uid)}, Spec: berthv1.IPAllocationSpec{Pool: "p", IP: "10.0.0.1"}}
	}
	tests := []struct {
		name  string
		steps func(v *view, c *ranges.Pool, clk *clocktesting.FakePassiveClock)
		free  bool // whether 10.0.0.1 is offered at the end
	}{
		{"created by another replica", func(v *view, _ *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			v.setAllocation(alloc("u1"))
		}, false},
		{"created then deleted", func(v *view, _ *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			v.setAllocation(alloc("u1"))
			v.onAllocation(alloc("u1"), true)
		}, true},
		{"a late delete of an older object does not free the newer holder", func(v *view, _ *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			v.setAllocation(alloc("u2"))
			v.onAllocation(alloc("u1"), true)
		}, false},
		{"a delete racing our own Create keeps the pending mark", func(v *view, c *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			if got, _ := v.pick("p", c, netip.Addr{}); got != a1 {
				t.Fatalf("picked %s", got)
			}
			v.onAllocation(alloc("u0"), true)
			v.settle(alloc("u1"))
		}, false},
		{"our own Create failed: offered again", func(v *view, c *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			_, _ = v.pick("p", c, netip.Addr{})
			v.unpick("p", a1)
		}, true},
		{"AlreadyExists, then the informer shows the holder and its deletion", func(v *view, c *ranges.Pool, clk *clocktesting.FakePassiveClock) {
			_, _ = v.pick("p", c, netip.Addr{})
			v.taken("p", a1)
			v.setAllocation(alloc("u1"))
			clk.SetTime(clk.Now().Add(time.Hour)) // known holders never expire
			v.onAllocation(alloc("u1"), true)
		}, true},
		{"AlreadyExists with a holder the informer never shows expires", func(v *view, c *ranges.Pool, clk *clocktesting.FakePassiveClock) {
			_, _ = v.pick("p", c, netip.Addr{})
			v.taken("p", a1)
			clk.SetTime(clk.Now().Add(unknownTTL))
		}, true},
		{"AlreadyExists is believed for a while", func(v *view, c *ranges.Pool, clk *clocktesting.FakePassiveClock) {
			_, _ = v.pick("p", c, netip.Addr{})
			v.taken("p", a1)
			clk.SetTime(clk.Now().Add(unknownTTL - time.Second))
		}, false},
		{"a holder known to the informer never expires", func(v *view, _ *ranges.Pool, clk *clocktesting.FakePassiveClock) {
			v.setAllocation(alloc("u1"))
			clk.SetTime(clk.Now().Add(time.Hour))
		}, false},
		{"a tombstone deletes like an object", func(v *view, _ *ranges.Pool, _ *clocktesting.FakePassiveClock) {
			v.setAllocation(alloc("u1"))
			v.onAllocation(toolsTombstone(alloc("u1")), true)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
			v := newView(clk)
			c, err := ranges.Compile(&berthv1.IPPoolSpec{Subnet: "10.0.0.0/30"}) // 10.0.0.1 and .2
			if err != nil {
				t.Fatal(err)
			}
			tt.steps(v, c, clk)
			got, err := v.pick("p", c, a1)
			free := err == nil && got == a1
			if free != tt.free {
				t.Fatalf("10.0.0.1 offered: %v (pick = %v, %v), want %v", free, got, err, tt.free)
			}
		})
	}
}

// TestViewPendingMarksKeepReplicaGoroutinesApart: concurrent Reserves of
// one replica never get the same candidate; a full pool says so.
func TestViewPendingMarksKeepReplicaGoroutinesApart(t *testing.T) {
	v := newView(clocktesting.NewFakePassiveClock(time.Unix(0, 0)))
	c, err := ranges.Compile(&berthv1.IPPoolSpec{Subnet: "10.0.0.0/29"}) // 6 addresses
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 6; i++ {
		a, err := v.pick("p", c, netip.MustParseAddr("10.0.0.3"))
		if err != nil || seen[a] {
			t.Fatalf("pick %d = %s, %v (seen before: %v)", i, a, err, seen[a])
		}
		seen[a] = true
	}
	if _, err := v.pick("p", c, netip.Addr{}); !errors.Is(err, ranges.ErrNoFree) {
		t.Fatalf("pick in a full pool: %v", err)
	}
	if total, allocated := v.counts("p", c); total != 6 || allocated != 6 {
		t.Fatalf("counts = %d, %d", total, allocated)
	}
}

func toolsTombstone(obj *berthv1.IPAllocation) any {
	return toolscache.DeletedFinalStateUnknown{Key: obj.Name, Obj: obj}
}
