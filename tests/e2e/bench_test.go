package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

var benchOnce sync.Once

// BenchmarkPodCreate is the admission load driver: batches of pods created
// by concurrent clients through the same API server, in a namespace the
// webhook never sees (berth-system: the baseline) and with a Berth network
// (policies evaluated, an address reserved, the pod patched). It reports
// pods/s and the client-observed create latency p50/p99; docs/benchmarks.md
// compares the two as a ratio.
func BenchmarkPodCreate(b *testing.B) {
	startBench(b)
	for _, bc := range []struct {
		name, ns string
		ann      map[string]string
	}{
		{"baseline-no-webhook", berthNamespace, nil},
		{"berth-network", "bench", map[string]string{nadv1.NetworksAnnotation: "net"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const batch, workers = 100, 16
			var lat []time.Duration
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				forceDeleteAll(b, bc.ns)
				b.StartTimer()
				start := time.Now()
				l, err := createBatch(bc.ns, fmt.Sprintf("b%d-", i), batch, workers, bc.ann)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, l...)
			}
			b.StopTimer()
			forceDeleteAll(b, bc.ns)
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "pods/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

func startBench(b *testing.B) *env {
	b.Helper()
	startOnce.Do(func() { berth.startErr = berth.start() })
	if berth.startErr != nil {
		b.Fatalf("starting Berth: %v", berth.startErr)
	}
	benchOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, o := range []client.Object{
			&corev1.Namespace{ObjectMeta: objectMeta("", "bench")},
			&berthv1.IPPool{ObjectMeta: objectMeta("", "bench-v4"), Spec: berthv1.IPPoolSpec{Subnet: "10.100.0.0/16", Networks: []string{"bench/net"}}},
			macvlan("bench", "net", []string{"bench-v4"}, nil),
		} {
			if err := cp.Client.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	return &berth
}

// createBatch creates n pods with workers concurrent clients and returns
// each create's latency.
func createBatch(ns, prefix string, n, workers int, ann map[string]string) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([]time.Duration, n)
	errs := make(chan error, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				p := pod(ns, fmt.Sprintf("%s%04d", prefix, i), ann, map[string]string{"bench": "true"})
				start := time.Now()
				if err := cp.Client.Create(ctx, p); err != nil {
					errs <- err
					continue
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return lat, nil
}

func forceDeleteAll(b *testing.B, ns string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cp.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabels{"bench": "true"}, client.GracePeriodSeconds(0)); err != nil {
		b.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		var list corev1.PodList
		err := cp.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"bench": "true"})
		return err == nil && len(list.Items) == 0, err
	}); err != nil {
		b.Fatal(err)
	}
}
