// Command berth-controller runs Berth's admission webhook and controllers.
// Flags are parsed here; everything is built by package app.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berth-io/berth/cmd/berth-controller/app"
)

func main() {
	var cfg app.Config
	var dnsNames, ips, disabled string
	fs := flag.NewFlagSet("berth-controller", flag.ExitOnError)
	fs.StringVar(&cfg.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Berth's namespace (default $POD_NAMESPACE)")
	fs.StringVar(&cfg.ServiceAccount, "service-account", "berth-controller", "Berth's service account, allowed to change the annotations it wrote")
	fs.StringVar(&cfg.WebhookHost, "webhook-host", "", "address the webhook server listens on (all when empty)")
	fs.IntVar(&cfg.WebhookPort, "webhook-port", 9443, "port of the webhook server")
	fs.StringVar(&cfg.CertSource, "cert-source", app.CertsSelfManaged, "where the serving certificate comes from: self-managed (a CA in a Secret, caBundle patched) or files (cert-manager)")
	fs.StringVar(&cfg.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory of tls.crt and tls.key with --cert-source=files")
	fs.StringVar(&cfg.CertSecret, "cert-secret", "berth-webhook-tls", "Secret holding the self-managed CA and certificate")
	fs.StringVar(&dnsNames, "cert-dns-names", "", "comma-separated DNS names of the serving certificate (default: the Service's names)")
	fs.StringVar(&ips, "cert-ips", "", "comma-separated IP addresses of the serving certificate")
	fs.BoolVar(&cfg.EnableHTTP2, "enable-http2", false, "serve the webhook over HTTP/2 too (off: HTTP/2 rapid-reset attacks, and one HTTP/2 connection pins admissions to one replica)")
	fs.StringVar(&cfg.WebhookConfiguration, "webhook-configuration", "berth", "name of the mutating and validating webhook configurations to patch")
	service := fs.String("service", "berth-webhook", "the webhook's Service, for the default certificate names")
	fs.StringVar(&cfg.MetricsAddr, "metrics-bind-address", ":8080", "address of /metrics (0 turns it off)")
	fs.StringVar(&cfg.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&cfg.LeaderElection, "leader-elect", true, "run the controllers in one replica at a time")
	fs.StringVar(&cfg.LeaderElectionID, "leader-election-id", "berth-controller", "name of the leader election Lease")
	fs.StringVar(&disabled, "disable-policies", "", "comma-separated shipped policies to leave out")
	fs.DurationVar(&cfg.PolicyTimeBudget, "policy-time-budget", 0, "time budget of one policy evaluation (0: the engine's default)")
	fs.DurationVar(&cfg.ReservationTTL, "reservation-ttl", 0, "how long a reservation waits for its pod (0: 2m)")
	fs.StringVar(&cfg.NodeKubeconfig, "node-kubeconfig", "/etc/cni/net.d/berth.d/berth.kubeconfig", "kubeconfig path on the nodes for plugins called without Multus (berth-cni-install writes it there; empty leaves it out of the NADs)")
	fs.DurationVar(&cfg.AdmissionTimeout, "admission-timeout", 0, "bound of one pod admission inside the webhook (0: 8s)")
	fs.BoolVar(&cfg.CreateCoordinator, "create-coordinator", true, "create the Coordinator \"default\" (podCIDRType auto) whenever there is none; an existing one is never changed")
	opts := zap.Options{}
	opts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	cfg.CertDNSNames = split(dnsNames)
	if len(cfg.CertDNSNames) == 0 && cfg.Namespace != "" {
		cfg.CertDNSNames = []string{*service + "." + cfg.Namespace + ".svc", *service + "." + cfg.Namespace + ".svc.cluster.local"}
	}
	for _, s := range split(ips) {
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(os.Stderr, "berth-controller: --cert-ips: %q is not an IP address\n", s)
			os.Exit(2)
		}
		cfg.CertIPs = append(cfg.CertIPs, ip)
	}
	cfg.DisabledPolicies = split(disabled)
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-controller: %v\n", err)
		os.Exit(1)
	}
	cfg.RestConfig = restConfig
	if err := app.Run(ctrl.SetupSignalHandler(), cfg); err != nil {
		fmt.Fprintf(os.Stderr, "berth-controller: %v\n", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
