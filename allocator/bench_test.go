package allocator_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// benchParallelism is goroutines per core issuing requests, as concurrent
// admissions would.
const benchParallelism = 8

var benchPools atomic.Int64

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

func (l *latencies) report(b *testing.B, unit string, elapsed time.Duration) {
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		return float64(l.all[int(float64(len(l.all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func benchPool(b *testing.B) string {
	name := fmt.Sprintf("bench-%d", benchPools.Add(1))
	createPool(b, name, berthv1.IPPoolSpec{Subnet: "10.200.0.0/16"})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = cp.Client.DeleteAllOf(ctx, &berthv1.IPAllocation{}, client.MatchingFields{"spec.pool": name})
		_ = cp.Client.Delete(ctx, &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	return name
}

func benchRequest(pool string, i int64) allocator.Request {
	return allocator.Request{Pod: generatedPod("default", "bench-"), AdmissionUID: types.UID(fmt.Sprintf("bench-%d", i)), Interface: "net1", IPv4Pools: []string{pool}}
}

// BenchmarkReserve measures Reserve against the local API server with one
// and two replicas (each with its own client and informers) sharing the
// load: one IPAllocation Create per op plus the candidate walk.
func BenchmarkReserve(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			insts := make([]*instance, n)
			for i := range insts {
				insts[i] = newInstance(b, nil)
			}
			pool := benchPool(b)
			var next atomic.Int64
			lat := &latencies{}
			b.SetParallelism(benchParallelism)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					inst := insts[int(i)%n]
					if err := lat.time(func() error { _, err := inst.Reserve(context.Background(), benchRequest(pool, i)); return err }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			lat.report(b, "reservations", time.Since(start))
		})
	}
}

// BenchmarkRelease measures Release of reservations made beforehand.
func BenchmarkRelease(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			insts := make([]*instance, n)
			for i := range insts {
				insts[i] = newInstance(b, nil)
			}
			pool := benchPool(b)
			results := reserveMany(context.Background(), insts, b.N, benchParallelism, func(i int) allocator.Request { return benchRequest(pool, int64(i)) })
			var next atomic.Int64
			lat := &latencies{}
			b.SetParallelism(benchParallelism)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					r := results[i]
					if r.err != nil {
						b.Error(r.err)
						return
					}
					if err := lat.time(func() error { return insts[int(i)%n].Release(context.Background(), r.res) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			lat.report(b, "releases", time.Since(start))
		})
	}
}

// BenchmarkBaselineCreate is the floor the allocator is compared with: a
// plain Create (and then Delete) of a small ConfigMap against the same API
// server with the same concurrency.
func BenchmarkBaselineCreate(b *testing.B) {
	for _, op := range []string{"create", "delete"} {
		b.Run(op, func(b *testing.B) {
			c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
			if err != nil {
				b.Fatal(err)
			}
			prefix := fmt.Sprintf("baseline-%d-", benchPools.Add(1))
			obj := func(i int64) *corev1.ConfigMap {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s%d", prefix, i)}, Data: map[string]string{"ip": "10.200.0.1"}}
			}
			if op == "delete" {
				for i := int64(0); i < int64(b.N); i++ {
					if err := c.Create(context.Background(), obj(i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			var next atomic.Int64
			lat := &latencies{}
			b.SetParallelism(benchParallelism)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					err := lat.time(func() error {
						if op == "create" {
							return c.Create(context.Background(), obj(i))
						}
						return c.Delete(context.Background(), obj(i))
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			lat.report(b, op+"s", time.Since(start))
			if op == "create" {
				_ = c.DeleteAllOf(context.Background(), &corev1.ConfigMap{}, client.InNamespace("default"))
			}
		})
	}
}
