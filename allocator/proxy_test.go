package allocator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/allocator"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// cutter is a TCP proxy to the API server whose connections the test can
// cut all at once, as an API server restart or a network blip does: watches
// break, requests in flight fail without telling whether they took effect.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); c.cut() })
	go c.serve()
	return c
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", c.target, 5*time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
		go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
	}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

// TestConnectionsCutMidRunDuplicateNothing cuts every connection of two
// replicas to the API server five times while they reserve. Calls may fail;
// none may hand out an address twice, every success is stored, an object
// nobody was told about is a Reserved one (the TTL collects it), and the
// replicas' views heal to the API server's truth.
func TestConnectionsCutMidRunDuplicateNothing(t *testing.T) {
	ctx := controlplane.Context(t, 5*time.Minute)
	createPool(t, "cut", berthv1.IPPoolSpec{Subnet: "10.110.0.0/20", IPs: []string{"10.110.0.1-10.110.7.208"}}) // 2000
	host, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutter(t, host.Host)
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = "https://" + proxy.ln.Addr().String()
	cfg.Timeout = 10 * time.Second
	insts := []*instance{proxiedInstance(t, cfg), proxiedInstance(t, cfg)}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(400 * time.Millisecond):
				proxy.cut()
			}
		}
	}()
	results := reserveMany(ctx, insts, 1500, 8, func(i int) allocator.Request {
		return allocator.Request{Pod: generatedPod("default", "cut-"), AdmissionUID: types.UID(fmt.Sprintf("cut-%d", i)), Interface: "net1", IPv4Pools: []string{"cut"}}
	})
	<-done
	failed := 0
	for _, r := range results {
		if r.err != nil {
			failed++
			if errors.Is(r.err, allocator.ErrExhausted) || errors.Is(r.err, allocator.ErrTaken) {
				t.Fatalf("a cut connection reported as a pool error: %v", r.err)
			}
		}
	}
	stored := checkUnique(t, "cut", results)
	succeeded := len(results) - failed
	if orphans := len(stored) - succeeded; orphans < 0 || orphans > failed {
		t.Fatalf("%d stored, %d succeeded, %d failed", len(stored), succeeded, failed)
	}
	for _, obj := range allocationsOf(t, "cut") {
		if obj.Spec.Phase != berthv1.AllocationReserved {
			t.Fatalf("%s is %s", obj.Name, obj.Spec.Phase)
		}
	}
	for _, inst := range insts {
		waitUsage(t, inst, "cut", 2000, int64(len(stored)))
	}
	t.Logf("%d reserved, %d calls failed on cut connections, %d objects left for the TTL", succeeded, failed, len(stored)-succeeded)
	if succeeded < 1000 {
		t.Fatalf("only %d of 1500 reservations succeeded across 5 cuts", succeeded)
	}
}

// proxiedInstance is newInstance over cfg (the proxy).
func proxiedInstance(t *testing.T, cfg *rest.Config) *instance {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	informers, err := cache.New(cfg, cache.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	a, err := allocator.New(ctx, allocator.Options{Informers: informers, Store: &allocator.APIStore{Writer: c, Reader: c}, APIReader: c})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	inst := &instance{Allocator: a, client: c, stop: stop}
	deadline := time.Now().Add(time.Minute)
	for !a.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("allocator instance not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return inst
}
