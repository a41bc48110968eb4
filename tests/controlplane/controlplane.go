// Package controlplane runs a real Kubernetes control plane on loopback for
// tests and the demo: etcd, kube-apiserver and, where asked,
// kube-controller-manager and kube-scheduler, in a temporary directory, with
// Berth's CRDs installed. Nothing is faked: the binaries are the pinned
// Kubernetes release built by `make bins`.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Options say what to run.
type Options struct {
	// Dir holds certificates, data and logs; empty means a new temp dir,
	// removed by Stop.
	Dir string
	// ControllerManager and Scheduler start those components too.
	ControllerManager bool
	Scheduler         bool
	// CRDDirs hold the CRD manifests to install; empty means the
	// repository's manifests/crds and manifests/multus.
	CRDDirs []string
	// NoCRDs installs none: the tests install them as users do.
	NoCRDs bool
	// ServiceCIDR is the service cluster IP range; empty means 10.96.0.0/16.
	ServiceCIDR string
	// ClusterCIDR is given to kube-controller-manager; empty means
	// 10.244.0.0/16.
	ClusterCIDR string
	// Detach leaves the processes running when the caller exits (the demo's
	// KEEP=1); StopDir(Dir) stops them later.
	Detach bool
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// AfterTests, for Main, runs after the package's tests while the
	// control plane still runs; an error fails the package.
	AfterTests func() error
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Dir is where everything lives; Kubeconfig is an admin kubeconfig in it.
	Dir        string
	Kubeconfig string
	// Config is an admin rest.Config with generous rate limits for tests.
	Config *rest.Config
	// Client is a controller-runtime client knowing core and Berth types.
	Client client.Client
	// Scheme holds the core Kubernetes types and Berth's.
	Scheme *runtime.Scheme
	// CACert is the PEM CA that signed the API server's serving certificate.
	CACert []byte
	// ServiceCIDR and ClusterCIDR are the ranges the control plane was
	// started with.
	ServiceCIDR, ClusterCIDR string

	ownDir bool
	keep   bool
	detach bool
	pki    *pki
	procs  []*process
}

// Start runs the control plane and returns once the API server is ready and
// the CRDs are established. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	bins, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{Dir: opts.Dir, ServiceCIDR: opts.ServiceCIDR, ClusterCIDR: opts.ClusterCIDR, detach: opts.Detach}
	if cp.ServiceCIDR == "" {
		cp.ServiceCIDR = "10.96.0.0/16"
	}
	if cp.ClusterCIDR == "" {
		cp.ClusterCIDR = "10.244.0.0/16"
	}
	if cp.Dir == "" {
		cp.Dir, err = os.MkdirTemp("", "berth-cp-")
		if err != nil {
			return nil, fmt.Errorf("creating control plane dir: %w", err)
		}
		cp.ownDir = true
	} else if err := os.MkdirAll(cp.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating control plane dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()

	if cp.pki, err = newPKI(cp.Dir); err != nil {
		return nil, err
	}
	cp.CACert = cp.pki.caPEM

	etcdURL, err := cp.startEtcd(ctx, bins.Etcd, opts.Detach)
	if err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, bins.APIServer, etcdURL, opts); err != nil {
		return nil, err
	}
	if !opts.NoCRDs {
		if err := cp.installCRDs(ctx, opts.CRDDirs); err != nil {
			return nil, err
		}
	}
	if opts.ControllerManager {
		if err := cp.startControllerManager(ctx, bins.ControllerManager, opts.Detach); err != nil {
			return nil, err
		}
	}
	if opts.Scheduler {
		if err := cp.startScheduler(ctx, bins.Scheduler, opts.Detach); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// Stop stops every process started, in reverse order, and removes the
// directory if Start created it.
func (cp *ControlPlane) Stop() error {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop(15 * time.Second)
	}
	cp.procs = nil
	if cp.ownDir && !cp.keep {
		if err := os.RemoveAll(cp.Dir); err != nil {
			return fmt.Errorf("removing %s: %w", cp.Dir, err)
		}
	}
	return nil
}

// Keep makes Stop leave the directory with its logs in place.
func (cp *ControlPlane) Keep() { cp.keep = true }

// Logs returns the log file of a component ("etcd", "kube-apiserver", ...).
func (cp *ControlPlane) Logs(component string) string {
	return filepath.Join(cp.Dir, component+".log")
}

// Spawn runs another program beside the control plane (the demo's
// berth-controller), logging to Logs(name), detached like the rest when the
// control plane is, and stopped by Stop (first) or StopDir.
func (cp *ControlPlane) Spawn(name, bin string, args, env []string) error {
	_, err := cp.runEnv(name, bin, args, env, cp.detach)
	return err
}

func (cp *ControlPlane) run(name, bin string, args []string, detach bool) (*process, error) {
	return cp.runEnv(name, bin, args, nil, detach)
}

func (cp *ControlPlane) runEnv(name, bin string, args, env []string, detach bool) (*process, error) {
	p, err := startProcess(cp.Dir, name, bin, args, env, detach)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

func (cp *ControlPlane) startEtcd(ctx context.Context, bin string, detach bool) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := cp.run("etcd", bin, []string{
		"--name=berth",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=berth=" + peerURL,
		// Enough for tests and the demo; keeps the data dir small.
		"--quota-backend-bytes=4294967296",
		"--snapshot-count=10000",
	}, detach)
	if err != nil {
		return "", err
	}
	err = waitFor(ctx, 60*time.Second, p, "etcd health", func() error {
		return httpOK(ctx, http.DefaultClient, clientURL+"/health")
	})
	return clientURL, err
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, bin, etcdURL string, opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, "apiserver-certs"),
		"--tls-cert-file=" + cp.pki.servingCert,
		"--tls-private-key-file=" + cp.pki.servKey,
		"--client-ca-file=" + cp.pki.caCert,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + cp.ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + cp.pki.saPub,
		"--service-account-signing-key-file=" + cp.pki.saKey,
		"--allow-privileged=true",
		// The kubernetes Service endpoints may not be loopback addresses.
		"--endpoint-reconciler-type=none",
		// No kubelet mounts tokens here; without this admission plugin, pods
		// can be created before the serviceaccount controller made "default".
		"--disable-admission-plugins=ServiceAccount",
		"--max-requests-inflight=800",
		"--max-mutating-requests-inflight=400",
		"--profiling=false",
	}
	args = append(args, opts.ExtraAPIServerArgs...)
	p, err := cp.run("kube-apiserver", bin, args, opts.Detach)
	if err != nil {
		return err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(port)
	cp.Config = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cp.pki.caPEM,
			CertData: cp.pki.adminCertPEM,
			KeyData:  cp.pki.adminKeyPEM,
		},
		QPS:   1000,
		Burst: 2000,
	}
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	if err := cp.writeKubeconfig(cp.Kubeconfig); err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		return fmt.Errorf("building HTTP client for the API server: %w", err)
	}
	if err := waitFor(ctx, 120*time.Second, p, "kube-apiserver /readyz", func() error {
		return httpOK(ctx, httpClient, host+"/readyz")
	}); err != nil {
		return err
	}
	cp.Scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, berthv1.AddToScheme, nadv1.AddToScheme} {
		if err := add(cp.Scheme); err != nil {
			return fmt.Errorf("building scheme: %w", err)
		}
	}
	cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	// The default namespace and its service account appear asynchronously;
	// tests expect the namespace at least.
	return waitFor(ctx, 60*time.Second, p, "namespace default", func() error {
		return cp.Client.Get(ctx, client.ObjectKey{Name: "default"}, &corev1.Namespace{})
	})
}

func (cp *ControlPlane) writeKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["berth"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.pki.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cp.pki.adminCertPEM, ClientKeyData: cp.pki.adminKeyPEM}
	cfg.Contexts["berth"] = &clientcmdapi.Context{Cluster: "berth", AuthInfo: "admin"}
	cfg.CurrentContext = "berth"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

func (cp *ControlPlane) startControllerManager(ctx context.Context, bin string, detach bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := cp.run("kube-controller-manager", bin, []string{
		"--kubeconfig=" + cp.Kubeconfig,
		"--authentication-kubeconfig=" + cp.Kubeconfig,
		"--authorization-kubeconfig=" + cp.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, "kcm-certs"),
		"--leader-elect=false",
		"--root-ca-file=" + cp.pki.caCert,
		"--service-account-private-key-file=" + cp.pki.saKey,
		"--cluster-signing-cert-file=" + cp.pki.caCert,
		"--cluster-signing-key-file=" + cp.pki.caKey,
		"--cluster-cidr=" + cp.ClusterCIDR,
		"--service-cluster-ip-range=" + cp.ServiceCIDR,
		// Nodes here have no kubelet: the lifecycle controller would taint
		// them unreachable and evict every pod.
		"--controllers=*,-node-lifecycle-controller,-node-ipam-controller",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-statefulset-syncs=10",
		"--concurrent-gc-syncs=40",
	}, detach)
	if err != nil {
		return err
	}
	return waitFor(ctx, 60*time.Second, p, "kube-controller-manager /healthz", func() error {
		return httpOK(ctx, insecureClient(), "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
	})
}

func (cp *ControlPlane) startScheduler(ctx context.Context, bin string, detach bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(cp.Dir, "scheduler.yaml")
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 500
  burst: 1000
leaderElection:
  leaderElect: false
`, cp.Kubeconfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("writing scheduler config: %w", err)
	}
	p, err := cp.run("kube-scheduler", bin, []string{
		"--config=" + cfgPath,
		"--authentication-kubeconfig=" + cp.Kubeconfig,
		"--authorization-kubeconfig=" + cp.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, "scheduler-certs"),
	}, detach)
	if err != nil {
		return err
	}
	return waitFor(ctx, 60*time.Second, p, "kube-scheduler /healthz", func() error {
		return httpOK(ctx, insecureClient(), "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
	})
}

// waitFor polls check until it succeeds, p exits, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, p *process, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := p.exited(); err != nil {
			return err
		}
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v); last lines of %s:\n%s", what, ctx.Err(), last, p.logPath, tail(p.logPath, 30))
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// insecureClient checks the health endpoints of the controller manager and
// scheduler, which serve self-signed certificates of their own.
func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health check
}

// freePort asks the kernel for an unused loopback port. Another process may
// take it before the caller binds it; on loopback in a test run that is rare
// enough that the component's failure to start is the right report.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("finding a free port: listener has no TCP address")
	}
	return addr.Port, nil
}
