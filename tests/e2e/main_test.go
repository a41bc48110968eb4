// Package e2e runs Berth end to end on the local control plane: the API
// server calls the webhook over TLS (two replicas behind a loopback proxy,
// sharing the self-managed CA), kube-controller-manager creates the pods of
// Deployments and StatefulSets, kube-scheduler binds them to Node objects
// the tests create. Pods have no kubelet: tests delete them with a grace
// period of zero.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/cmd/berth-controller/app"
	"github.com/berth-io/berth/tests/controlplane"
	berthwebhook "github.com/berth-io/berth/webhook"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.Main(m, controlplane.Options{ControllerManager: true, Scheduler: true, AfterTests: noRBACDenials}, &cp)
	if pluginsDir != "" {
		_ = os.RemoveAll(pluginsDir)
	}
	os.Exit(code)
}

// noRBACDenials fails the package when the API server refused the replicas
// anything: the RBAC Berth ships lacks a rule some path needs.
func noRBACDenials() error {
	data, err := os.ReadFile(cp.Logs("berth-controller"))
	if err != nil {
		return nil // Berth never started: the tests that needed it failed
	}
	if denied := controlplane.RBACDenials(data); len(denied) > 0 {
		return fmt.Errorf("the API server refused berth-controller %d times (shipped RBAC too narrow), e.g.:\n%s", len(denied), denied[0])
	}
	return nil
}

const (
	berthNamespace = "berth-system"
	berthSA        = "berth-controller"
	replicas       = 2
)

// env is Berth running for the whole package.
type env struct {
	probes   []string // readyz URLs
	metrics  []*prometheus.Registry
	proxy    *roundRobin
	nodes    []string
	startErr error
}

var (
	berth     env
	startOnce sync.Once
)

// start runs Berth once per package: namespace, webhook configurations, two
// replicas, the Coordinator and three nodes (two in rack r1, one in r2).
func start(t *testing.T) *env {
	t.Helper()
	startOnce.Do(func() { berth.startErr = berth.start() })
	if berth.startErr != nil {
		t.Fatalf("starting Berth: %v", berth.startErr)
	}
	return &berth
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (e *env) start() error {
	// The replicas live as long as the test binary.
	ctx := context.Background()
	logf.SetLogger(zap.New(zap.WriteTo(logFile()), zap.UseDevMode(false)))
	setup, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := cp.Client.Create(setup, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: berthNamespace}}); err != nil {
		return err
	}
	// The replicas act as their ServiceAccount, with the RBAC Berth ships:
	// what they may do is what an installed Berth may do, and the webhooks'
	// "not Berth" match conditions see them as Berth.
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	if err := cp.Apply(setup, filepath.Join(root, "manifests", "controller", "rbac.yaml")); err != nil {
		return err
	}
	user, groups := controlplane.ServiceAccountUser(berthNamespace, berthSA)
	var backends []string
	var cfgs []app.Config
	for range replicas {
		ports := make([]int, 3)
		for i := range ports {
			p, err := freePort()
			if err != nil {
				return err
			}
			ports[i] = p
		}
		reg := prometheus.NewRegistry()
		e.metrics = append(e.metrics, reg)
		backends = append(backends, "127.0.0.1:"+strconv.Itoa(ports[0]))
		e.probes = append(e.probes, "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/readyz")
		cfgs = append(cfgs, app.Config{
			RestConfig: cp.ConfigAs(user, groups...), Namespace: berthNamespace, ServiceAccount: berthSA,
			WebhookHost: "127.0.0.1", WebhookPort: ports[0],
			CertSource: app.CertsSelfManaged, CertSecret: "berth-webhook-tls", CertIPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			CertCheckInterval: 2 * time.Second, WebhookConfiguration: berthwebhook.ConfigurationName,
			MetricsAddr: "0", ProbeAddr: "127.0.0.1:" + strconv.Itoa(ports[1]),
			LeaderElection: true, LeaderElectionID: "berth-controller",
			ReservationTTL: 30 * time.Second, Metrics: reg, InProcessReplica: true,
		})
	}
	proxy, err := newRoundRobin(ctx, backends)
	if err != nil {
		return err
	}
	e.proxy = proxy
	mut, val := berthwebhook.Configurations(berthwebhook.ConfigOptions{
		Namespace: berthNamespace, URL: "https://" + proxy.addr(),
		ServiceAccount: "system:serviceaccount:" + berthNamespace + ":" + berthSA,
	})
	for _, obj := range []client.Object{mut, val} {
		if err := cp.Client.Create(setup, obj); err != nil {
			return fmt.Errorf("creating %T: %w", obj, err)
		}
	}
	for _, cfg := range cfgs {
		go func() {
			if err := app.Run(ctx, cfg); err != nil {
				fmt.Fprintf(os.Stderr, "berth-controller replica on port %d: %v\n", cfg.WebhookPort, err)
			}
		}()
	}
	for _, probe := range e.probes {
		if err := waitReady(setup, probe); err != nil {
			return err
		}
	}
	coord := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: berthv1.CoordinatorSpec{
		PodCIDRType: berthv1.PodCIDRNone, PodCIDRs: []string{cp.ClusterCIDR}, ServiceCIDRs: []string{cp.ServiceCIDR},
	}}
	if err := cp.Client.Create(setup, coord); err != nil {
		return fmt.Errorf("creating the Coordinator: %w", err)
	}
	if err := poll(setup, func() (bool, error) {
		err := cp.Client.Get(setup, client.ObjectKeyFromObject(coord), coord)
		return err == nil && coord.Status.Phase == berthv1.CoordinatorSynced, nil
	}); err != nil {
		return fmt.Errorf("waiting for the Coordinator to sync: %w (status %+v)", err, coord.Status)
	}
	for i, rack := range []string{"r1", "r1", "r2"} {
		name := fmt.Sprintf("node-%d", i)
		if _, err := cp.CreateNode(setup, name, map[string]string{"rack": rack}, corev1.ResourceList{"berth.io/sriov_netdevice": *resourceQuantity(8)}); err != nil {
			return err
		}
		e.nodes = append(e.nodes, name)
	}
	return nil
}

func logFile() *os.File {
	f, err := os.Create(cp.Logs("berth-controller"))
	if err != nil {
		return os.Stderr
	}
	return f
}

func waitReady(ctx context.Context, url string) error {
	var last string
	err := poll(ctx, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?verbose", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		last = string(buf[:n])
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w; last answer: %s", url, err, last)
	}
	return nil
}

// poll calls check every 100 ms until it is done, fails, or ctx ends.
func poll(ctx context.Context, check func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

var _ = ptr.To[int]
