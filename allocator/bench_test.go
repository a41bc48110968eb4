package allocator_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// benchParallelism is goroutines per core issuing requests, as concurrent
// admissions would.
const benchParallelism = 8

var benchSeq atomic.Int64

// latencies collects per-operation durations and reports throughput and
// percentiles next to ns/op.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) time(f func() error) error {
	start := time.Now()
	err := f()
	d := time.Since(start)
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
	return err
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		return float64(l.all[int(float64(len(l.all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// parallel runs op b.N times from benchParallelism goroutines per core and
// reports throughput and latency.
func parallel(b *testing.B, op func(i int64) error) {
	var next atomic.Int64
	lat := &latencies{}
	b.SetParallelism(benchParallelism)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if err := lat.time(func() error { return op(i) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	lat.report(b, time.Since(start))
}

// benchPool creates a /16 for one round of a benchmark and returns a func
// that removes it and its allocations. A round is one call of the
// benchmark function; rounds with growing b.N run back to back, so each
// cleans up at its end rather than at the benchmark's.
func benchPool(b *testing.B, size int) (string, func()) {
	name := fmt.Sprintf("bench-%d", benchSeq.Add(1))
	spec := berthv1.IPPoolSpec{Subnet: "10.200.0.0/16"}
	if size > 0 {
		// Exactly size addresses from 10.200.0.1 on.
		last := netip.AddrFrom4([4]byte{10, 200, byte(size >> 8), byte(size)})
		spec.IPs = []string{"10.200.0.1-" + last.String()}
	}
	pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := cp.Client.Create(context.Background(), pool); err != nil {
		b.Fatalf("creating ippool %s: %v", name, err)
	}
	return name, func() { removePool(b, name) }
}

func benchRequest(pool string, i int64) allocator.Request {
	return allocator.Request{Pod: generatedPod("default", "bench-"), AdmissionUID: types.UID(fmt.Sprintf("bench-%d", i)), Interface: "net1", IPv4Pools: []string{pool}}
}

// instances starts n replicas for one round; stop ends them, so that no
// informer of an earlier round competes with the next.
func instances(b *testing.B, n int) (insts []*instance, stop func()) {
	insts = make([]*instance, n)
	for i := range insts {
		insts[i] = newInstance(b, nil)
	}
	return insts, func() {
		for _, inst := range insts {
			inst.stop()
		}
	}
}

// baselineObject is what the baselines write: a small ConfigMap (a plain
// built-in object) or an IPAllocation written directly (the same CRD, CEL
// rules and size as a reservation, without the allocator around it).
func baselineObject(kind, prefix string, i int64) client.Object {
	if kind == "configmap" {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s%d", prefix, i)}, Data: map[string]string{"ip": "10.200.0.1"}}
	}
	addr := netip.AddrFrom4([4]byte{10, 201, byte(i >> 8), byte(i)})
	pool := prefix + fmt.Sprint(i>>16)
	return &berthv1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName(pool, addr)},
		Spec: berthv1.IPAllocationSpec{Pool: pool, IP: addr.String(), Phase: berthv1.AllocationReserved, Interface: "net1",
			PodRef: &berthv1.PodReference{Namespace: "default", GenerateName: "bench-"}, AdmissionUID: types.UID(fmt.Sprintf("bench-%d", i))},
	}
}

// BenchmarkReserve measures Reserve against the local API server with one
// and two replicas (each with its own client and informers) sharing the
// load, next to the baselines of a plain Create in the same run: the
// allocator's cost is the ratio.
func BenchmarkReserve(b *testing.B) {
	for _, kind := range []string{"configmap", "ipallocation"} {
		b.Run("baseline="+kind, func(b *testing.B) {
			c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
			if err != nil {
				b.Fatal(err)
			}
			warmUp(b, c)
			prefix := fmt.Sprintf("baseline-%d-", benchSeq.Add(1))
			parallel(b, func(i int64) error { return c.Create(context.Background(), baselineObject(kind, prefix, i)) })
			cleanupBaseline(c, kind, prefix)
		})
	}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			insts, stop := instances(b, n)
			pool, cleanup := benchPool(b, 0)
			parallel(b, func(i int64) error {
				_, err := insts[int(i)%n].Reserve(context.Background(), benchRequest(pool, i))
				return err
			})
			stop()
			cleanup()
		})
	}
	// Filling a pool to the last address: the replicas' walks converge on
	// the few free addresses left and collide (AlreadyExists, next).
	b.Run("replicas=2/fill", func(b *testing.B) {
		if b.N > 65000 {
			b.Fatalf("a /16 holds 65534 addresses: run with -benchtime below that (b.N = %d)", b.N)
		}
		var conflicts atomic.Int64
		count := func(s allocator.Store) allocator.Store { return &conflictCounter{Store: s, n: &conflicts} }
		insts := []*instance{newInstance(b, count), newInstance(b, count)}
		pool, cleanup := benchPool(b, b.N)
		parallel(b, func(i int64) error {
			_, err := insts[int(i)%2].Reserve(context.Background(), benchRequest(pool, i))
			return err
		})
		b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
		for _, inst := range insts {
			inst.stop()
		}
		cleanup()
	})
}

// BenchmarkRelease measures Release of reservations made beforehand, next
// to the baselines of a plain Delete.
func BenchmarkRelease(b *testing.B) {
	for _, kind := range []string{"configmap", "ipallocation"} {
		b.Run("baseline="+kind, func(b *testing.B) {
			c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
			if err != nil {
				b.Fatal(err)
			}
			warmUp(b, c)
			prefix := fmt.Sprintf("baseline-%d-", benchSeq.Add(1))
			for i := int64(0); i < int64(b.N); i++ {
				if err := c.Create(context.Background(), baselineObject(kind, prefix, i)); err != nil {
					b.Fatal(err)
				}
			}
			parallel(b, func(i int64) error { return c.Delete(context.Background(), baselineObject(kind, prefix, i)) })
			cleanupBaseline(c, kind, prefix)
		})
	}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			insts, stop := instances(b, n)
			pool, cleanup := benchPool(b, 0)
			defer cleanup()
			defer stop()
			results := reserveMany(context.Background(), insts, b.N, benchParallelism, func(i int) allocator.Request { return benchRequest(pool, int64(i)) })
			for _, r := range results {
				if r.err != nil {
					b.Fatal(r.err)
				}
			}
			parallel(b, func(i int64) error { return insts[int(i)%n].Release(context.Background(), results[i].res) })
		})
	}
}

func cleanupBaseline(c client.Client, kind, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if kind == "configmap" {
		_ = c.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace("default"))
		return
	}
	for i := 0; i < 4; i++ {
		_ = c.DeleteAllOf(ctx, &berthv1.IPAllocation{}, client.MatchingFields{"spec.pool": fmt.Sprintf("%s%d", prefix, i)})
	}
}

// conflictCounter counts Creates answered AlreadyExists.
type conflictCounter struct {
	allocator.Store
	n *atomic.Int64
}

func (c *conflictCounter) Create(ctx context.Context, obj *berthv1.IPAllocation) error {
	err := c.Store.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		c.n.Add(1)
	}
	return err
}
