// Package app builds and runs berth-controller: one controller-runtime
// manager holding the admission webhook server and every controller
// (allocator, attachment policies, Networks, the Coordinator). main parses
// flags into a Config; tests and the demo run the same Run in-process.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/berth-io/berth/allocator"
	allocctrl "github.com/berth-io/berth/allocator/controllers"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	coordctrl "github.com/berth-io/berth/coordinator/controller"
	netctrl "github.com/berth-io/berth/network/controller"
	"github.com/berth-io/berth/policies"
	"github.com/berth-io/berth/policies/loader"
	berthwebhook "github.com/berth-io/berth/webhook"
	"github.com/berth-io/berth/webhook/certs"
)

// Certificate sources.
const (
	// CertsSelfManaged: a CA of Berth's own in a Secret, bundles patched.
	CertsSelfManaged = "self-managed"
	// CertsFromFiles: tls.crt and tls.key in CertDir (cert-manager mounts
	// them; its cainjector fills in the bundles), reloaded when they change.
	CertsFromFiles = "files"
)

// Config is everything berth-controller is built from.
type Config struct {
	// RestConfig reaches the API server.
	RestConfig *rest.Config
	// Namespace and ServiceAccount are Berth's own.
	Namespace      string
	ServiceAccount string

	// WebhookHost and WebhookPort are where the webhook server listens.
	WebhookHost string
	WebhookPort int
	// CertSource is CertsSelfManaged or CertsFromFiles.
	CertSource string
	// CertDir holds tls.crt and tls.key with CertsFromFiles.
	CertDir string
	// CertSecret is the Secret of the self-managed CA; CertDNSNames and
	// CertIPs are what its serving certificate names.
	CertSecret   string
	CertDNSNames []string
	CertIPs      []net.IP
	// CertCheckInterval: how often replicas re-read the Secret; 0 is 1 min.
	CertCheckInterval time.Duration
	// EnableHTTP2 serves the webhook over HTTP/2 too. Off by default, as
	// kubebuilder projects do since the HTTP/2 rapid-reset attacks; with
	// HTTP/1.1 the API server also opens several connections under load,
	// which a Service spreads over the replicas (one HTTP/2 connection would
	// pin every admission to one replica).
	EnableHTTP2 bool
	// WebhookConfiguration names the mutating and validating webhook
	// configurations whose caBundle is patched (self-managed certificates).
	WebhookConfiguration string

	// MetricsAddr and ProbeAddr serve /metrics and /healthz, /readyz; "0"
	// turns one off.
	MetricsAddr string
	ProbeAddr   string

	// LeaderElection runs the controllers in one replica at a time; the
	// webhook server and the policy loader run in all.
	LeaderElection   bool
	LeaderElectionID string

	// DisabledPolicies are shipped policies left out.
	DisabledPolicies []string
	// PolicyTimeBudget bounds one evaluation; 0 is the engine's default.
	PolicyTimeBudget time.Duration
	// ReservationTTL is how long a reservation waits for its pod.
	ReservationTTL time.Duration
	// NodeKubeconfig is the kubeconfig path on the nodes the plugins read
	// when not called through Multus.
	NodeKubeconfig string
	// AdmissionTimeout bounds one pod admission inside the webhook.
	AdmissionTimeout time.Duration
	// CreateCoordinator makes the leader create the Coordinator "default"
	// (podCIDRType auto) whenever there is none, so pods on Networks that
	// need berth-coordinator are not refused on a fresh install. Off, an
	// admin (or a test that writes its own) creates it.
	CreateCoordinator bool

	// Metrics is the registry of Berth's own collectors; nil is
	// controller-runtime's, which the manager serves on MetricsAddr.
	// Replicas run in one process (tests) need one each.
	Metrics prometheus.Registerer
	// InProcessReplica lets several managers with the same controllers run
	// in one process (tests, the demo): controller-runtime otherwise refuses
	// a second controller of the same name.
	InProcessReplica bool
}

// Validate checks the Config; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.RestConfig == nil {
		errs = append(errs, errors.New("no API server configuration"))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("--namespace: required"))
	}
	if c.ServiceAccount == "" {
		errs = append(errs, errors.New("--service-account: required"))
	}
	switch c.CertSource {
	case CertsSelfManaged:
		if c.CertSecret == "" {
			errs = append(errs, errors.New("--cert-secret: required with --cert-source=self-managed"))
		}
		if len(c.CertDNSNames) == 0 && len(c.CertIPs) == 0 {
			errs = append(errs, errors.New("--cert-dns-names or --cert-ips: at least one name is required with --cert-source=self-managed"))
		}
	case CertsFromFiles:
		if c.CertDir == "" {
			errs = append(errs, errors.New("--cert-dir: required with --cert-source=files"))
		}
	default:
		errs = append(errs, fmt.Errorf("--cert-source: %q is neither %q nor %q", c.CertSource, CertsSelfManaged, CertsFromFiles))
	}
	return errors.Join(errs...)
}

// Username is the service account as the API server names it.
func (c *Config) Username() string {
	return "system:serviceaccount:" + c.Namespace + ":" + c.ServiceAccount
}

// Scheme holds the types berth-controller reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, berthv1.AddToScheme, nadv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return s, nil
}

// Run builds the manager and runs it until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	mgr, err := Build(ctx, cfg)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// Build wires everything into a manager, not yet started.
func Build(ctx context.Context, cfg Config) (ctrl.Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	direct, err := client.New(cfg.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("building the API client: %w", err)
	}
	var cm *certs.Manager
	var tlsOpts []func(*tls.Config)
	if !cfg.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if cfg.CertSource == CertsSelfManaged {
		cm, err = certs.New(direct, certs.Options{
			Namespace: cfg.Namespace, Name: cfg.CertSecret, DNSNames: cfg.CertDNSNames, IPs: cfg.CertIPs,
			MutatingWebhookConfigurations:   []string{cfg.WebhookConfiguration},
			ValidatingWebhookConfigurations: []string{cfg.WebhookConfiguration},
			Interval:                        cfg.CertCheckInterval,
		})
		if err != nil {
			return nil, err
		}
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.GetCertificate = cm.GetCertificate })
	}
	mgr, err := ctrl.NewManager(cfg.RestConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress:  cfg.ProbeAddr,
		LeaderElection:          cfg.LeaderElection,
		LeaderElectionID:        cfg.LeaderElectionID,
		LeaderElectionNamespace: cfg.Namespace,
		// Replicas hand over quickly when one stops.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(cfg.InProcessReplica)},
		// The manager caches every pod and IPAllocation of the cluster: keep
		// only what the controllers read (TrimPod: names, owners, node,
		// phase, the assignment) and no managed fields, so memory follows
		// the number of pods, not the size of their specs.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: allocctrl.TrimPod}},
		},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: cfg.WebhookHost, Port: cfg.WebhookPort, CertDir: cfg.CertDir, TLSOpts: tlsOpts,
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("building the manager: %w", err)
	}
	if cm != nil {
		if err := mgr.Add(cm); err != nil {
			return nil, fmt.Errorf("adding the certificate manager: %w", err)
		}
		if err := mgr.AddReadyzCheck("certificates", cm.Ready); err != nil {
			return nil, err
		}
	}

	// Allocator: every replica reserves; the controllers that bind and
	// collect run in the leader.
	alloc, err := allocator.New(ctx, allocator.Options{
		Informers: mgr.GetCache(),
		Store:     &allocator.APIStore{Writer: mgr.GetClient(), Reader: mgr.GetAPIReader()},
		APIReader: mgr.GetAPIReader(),
		Log:       mgr.GetLogger().WithName("allocator"),
	})
	if err != nil {
		return nil, err
	}
	if err := allocctrl.SetupWithManager(ctx, mgr, allocctrl.Options{ReservationTTL: cfg.ReservationTTL}); err != nil {
		return nil, fmt.Errorf("setting up the allocator controllers: %w", err)
	}

	// Policies: every replica loads them into its engine.
	engine, err := policies.NewEngine(policies.Options{TimeBudget: cfg.PolicyTimeBudget})
	if err != nil {
		return nil, err
	}
	if err := loader.Setup(mgr, engine, loader.Options{DisabledShipped: cfg.DisabledPolicies, Status: true}); err != nil {
		return nil, err
	}

	if err := netctrl.SetupWithManager(mgr, netctrl.Options{NodeKubeconfig: cfg.NodeKubeconfig}); err != nil {
		return nil, fmt.Errorf("setting up the Network controller: %w", err)
	}
	if err := coordctrl.SetupWithManager(mgr, coordctrl.Options{}); err != nil {
		return nil, fmt.Errorf("setting up the Coordinator controller: %w", err)
	}
	if cfg.CreateCoordinator {
		if err := coordctrl.SetupDefaultWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up the default Coordinator: %w", err)
		}
	}

	var registry prometheus.Registerer = crmetrics.Registry
	if cfg.Metrics != nil {
		registry = cfg.Metrics
	}
	if _, err := berthwebhook.Setup(ctx, mgr, berthwebhook.Options{
		Namespace: cfg.Namespace, ServiceAccount: cfg.Username(), Timeout: cfg.AdmissionTimeout, ReservationTTL: cfg.ReservationTTL,
	}, berthwebhook.Dependencies{Policies: engine, Allocator: alloc, Usage: alloc, Metrics: registry}); err != nil {
		return nil, err
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	checks := map[string]healthz.Checker{
		"webhook-server": mgr.GetWebhookServer().StartedChecker(),
		"caches":         berthwebhook.CachesSynced(mgr),
		"allocator":      ready(alloc.Ready, "the allocator's view has not synced"),
		"policies":       ready(engine.Ready, "no policy set loaded yet"),
	}
	for name, check := range checks {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

func ready(ok func() bool, msg string) healthz.Checker {
	return func(*http.Request) error {
		if !ok() {
			return errors.New(msg)
		}
		return nil
	}
}
