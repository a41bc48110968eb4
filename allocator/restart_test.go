package allocator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// TestRestartLosesNothingAndDuplicatesNothing stops one of two replicas in
// the middle of a run, with Reserves in flight, and starts a new one in its
// place. Every address handed out is stored once; the only objects nobody
// was told about come from the calls cut short (the TTL collects those).
func TestRestartLosesNothingAndDuplicatesNothing(t *testing.T) {
	ctx := controlplane.Context(t, 5*time.Minute)
	createPool(t, "restart", berthv1.IPPoolSpec{Subnet: "10.80.0.0/20", IPs: []string{"10.80.0.1-10.80.11.184"}}) // 3000
	a, b := newInstance(t, nil), newInstance(t, nil)

	var mu sync.Mutex
	var done []allocator.Reservation
	var aborted atomic.Int64
	req := func(who string, i int) allocator.Request {
		return allocator.Request{Pod: generatedPod("default", who+"-"), AdmissionUID: types.UID(fmt.Sprintf("%s-%d", who, i)), Interface: "net1", IPv4Pools: []string{"restart"}}
	}
	run := func(ctx context.Context, inst *instance, who string, n, workers int, counted *atomic.Int64) error {
		var wg sync.WaitGroup
		var firstErr atomic.Value
		next := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					res, err := inst.Reserve(ctx, req(who, i))
					switch {
					case err == nil:
						mu.Lock()
						done = append(done, res...)
						mu.Unlock()
						if counted != nil {
							counted.Add(1)
						}
					case ctx.Err() != nil:
						aborted.Add(1)
					default:
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
	feed:
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
		return nil
	}

	errA := make(chan error, 1)
	go func() { errA <- run(ctx, a, "a", 1400, 8, nil) }()

	// Replica b serves until it has done 300, then dies mid-flight.
	bCtx, killB := context.WithCancel(ctx)
	var bDone atomic.Int64
	go func() {
		for bDone.Load() < 300 && bCtx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		killB()
		b.stop()
	}()
	if err := run(bCtx, b, "b", 1600, 8, &bDone); err != nil {
		t.Fatalf("replica b before its restart: %v", err)
	}
	b2 := newInstance(t, nil)
	if err := run(ctx, b2, "b2", 1000, 8, nil); err != nil {
		t.Fatalf("replica b after its restart: %v", err)
	}
	if err := <-errA; err != nil {
		t.Fatalf("replica a: %v", err)
	}

	seen := map[string]bool{}
	for _, r := range done {
		if seen[r.Allocation] {
			t.Fatalf("%s handed out twice", r.Address)
		}
		seen[r.Allocation] = true
	}
	stored := map[string]berthv1.IPAllocation{}
	for _, obj := range allocationsOf(t, "restart") {
		stored[obj.Name] = obj
	}
	for name := range seen {
		if _, ok := stored[name]; !ok {
			t.Fatalf("reservation %s was lost: no IPAllocation", name)
		}
	}
	orphans := len(stored) - len(seen)
	if orphans < 0 || int64(orphans) > aborted.Load() {
		t.Fatalf("%d IPAllocations nobody was told about, but only %d calls were cut short", orphans, aborted.Load())
	}
	for name, obj := range stored {
		if !seen[name] && obj.Spec.Phase != berthv1.AllocationReserved {
			t.Fatalf("orphan %s is %s, want Reserved so that the TTL collects it", name, obj.Spec.Phase)
		}
	}
	t.Logf("%d reserved, %d calls cut short by the restart, %d of them left a Reserved object", len(seen), aborted.Load(), orphans)
	if len(seen) < 2400 {
		t.Fatalf("only %d reservations succeeded", len(seen))
	}
}

// TestStickyAddressComesBackToTheSamePod: a StatefulSet pod gets a sticky,
// owned, finalized reservation; the pod of the same name gets it back at
// its next admission, other ordinals do not, and a rollback leaves it.
func TestStickyAddressComesBackToTheSamePod(t *testing.T) {
	ctx := controlplane.Context(t, time.Minute)
	createPool(t, "sticky", berthv1.IPPoolSpec{Subnet: "10.90.0.0/24"})
	createPool(t, "sticky-v6", berthv1.IPPoolSpec{Subnet: "fd00:90::/64"})
	inst := newInstance(t, nil)
	req := func(ordinal int, admission string) allocator.Request {
		return allocator.Request{Pod: statefulSetPod("db", "web", ordinal, "sts-uid"), AdmissionUID: types.UID(admission), Interface: "net1", Network: "db/storage", IPv4Pools: []string{"sticky"}, IPv6Pools: []string{"sticky-v6"}}
	}
	first, err := inst.Reserve(ctx, req(0, "adm-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range first {
		obj := &berthv1.IPAllocation{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: r.Allocation}, obj); err != nil {
			t.Fatal(err)
		}
		if obj.Spec.StickyKey != "db/web/web-0/net1" || len(obj.OwnerReferences) != 0 || len(obj.Finalizers) != 1 || obj.Finalizers[0] != allocator.StickyFinalizer {
			t.Fatalf("sticky IPAllocation %s: key %q, owners %v, finalizers %v", obj.Name, obj.Spec.StickyKey, obj.OwnerReferences, obj.Finalizers)
		}
	}
	again, err := inst.Reserve(ctx, req(0, "adm-2"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if again[i].Address != first[i].Address || !again[i].Reused {
			t.Fatalf("web-0 came back with %v (reused %v), want %v", again[i].Address, again[i].Reused, first[i].Address)
		}
		obj := &berthv1.IPAllocation{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: again[i].Allocation}, obj); err != nil {
			t.Fatal(err)
		}
		if obj.Spec.AdmissionUID != "adm-2" || obj.Spec.Phase != berthv1.AllocationReserved {
			t.Fatalf("taken-over IPAllocation: admission %q phase %s", obj.Spec.AdmissionUID, obj.Spec.Phase)
		}
	}
	// A failed admission gives back what it created, not what it took over.
	if err := inst.Release(ctx, again); err != nil {
		t.Fatal(err)
	}
	if n := len(allocationsOf(t, "sticky")); n != 1 {
		t.Fatalf("%d sticky IPAllocations after releasing a reused one, want 1", n)
	}
	other, err := inst.Reserve(ctx, req(1, "adm-3"))
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Address == first[0].Address || other[0].Reused {
		t.Fatalf("web-1 got web-0's address %s", other[0].Address)
	}
	// Asking for a specific address the sticky one is not gives that one.
	r := req(0, "adm-4")
	r.IPv6Pools = nil
	r.StaticIPs = append(r.StaticIPs, first[0].Address.Addr().Next().Next())
	static, err := inst.Reserve(ctx, r)
	if err != nil && !errors.Is(err, allocator.ErrTaken) {
		t.Fatal(err)
	}
	if err == nil && (static[0].Reused || static[0].Address.Addr() != r.StaticIPs[0]) {
		t.Fatalf("static request for web-0 gave %+v", static)
	}
}
