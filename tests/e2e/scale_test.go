package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Two webhook replicas admit 500 pods created concurrently: no address is
// given twice, every pod has one, and both replicas took part.
func TestTwoReplicasConcurrentPods(t *testing.T) {
	e := start(t)
	const n, workers = 500, 32
	namespace(t, "scale", nil, nil)
	create(t, ippool("scale-v4", "10.40.0.0/22", nil, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"scale/net"} }))
	create(t, macvlan("scale", "net", []string{"scale-v4"}, nil))
	waitNAD(t, "scale", "net")
	before := admissions(t, e)

	ctx := ctxFor(t, 5*time.Minute)
	names := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				p := pod("scale", fmt.Sprintf("p-%03d", i), map[string]string{nadv1.NetworksAnnotation: "net"}, map[string]string{"app": "scale"})
				// The API server may time out under load; the pod is
				// retried, as a controller would.
				err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 6}, func(ctx context.Context) (bool, error) {
					return cp.Client.Create(ctx, p) == nil, nil
				})
				if err != nil {
					errs <- fmt.Errorf("pod %s: %w", p.Name, err)
				}
			}
		}()
	}
	for i := range n {
		names <- i
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list := pods(t, "scale", map[string]string{"app": "scale"}, n)
	holder := map[netip.Addr]string{}
	for i := range list {
		addr := netip.MustParsePrefix(address(t, assignmentOf(t, &list[i]), "net1", 4).Address).Addr()
		if other, dup := holder[addr]; dup {
			t.Errorf("address %s held by %s and %s", addr, other, list[i].Name)
		}
		holder[addr] = list[i].Name
	}
	waitAllocations(t, "scale-v4", n, 2*time.Minute)
	after := admissions(t, e)
	for i := range after {
		if after[i]-before[i] == 0 {
			t.Errorf("replica %d admitted no pod: the load was not spread", i)
		}
		t.Logf("replica %d admitted %.0f pods", i, after[i]-before[i])
	}
	var all corev1.PodList
	if err := cp.Client.List(ctx, &all, client.InNamespace("scale")); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("scale"), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitAllocations(t, "scale-v4", 0, 2*time.Minute)
}

// admissions reads, per replica, the pod CREATEs its webhook patched.
func admissions(t *testing.T, e *env) []float64 {
	t.Helper()
	out := make([]float64, len(e.metrics))
	for i, reg := range e.metrics {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "berth_webhook_admissions_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				if label(m, "webhook") == "pod-mutate" && label(m, "result") == "patched" {
					out[i] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
