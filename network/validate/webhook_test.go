package validate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/tests/controlplane"
)

// One control plane for the package; the webhook is served by a manager in
// this process and registered with the API server, which calls it for every
// Network write, as in a cluster.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.Main(m, controlplane.Options{}, &cp))
}

// serveWebhook runs the validator behind a real TLS webhook server on
// loopback and registers it with the API server for Networks.
func serveWebhook(t *testing.T) {
	t.Helper()
	certDir := t.TempDir()
	caPEM := writeServingCert(t, certDir)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir}),
	})
	if err != nil {
		t.Fatal(err)
	}
	v := &Validator{Reader: mgr.GetClient(), APIReader: mgr.GetAPIReader()}
	if err := v.SetupWebhookWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	url := "https://127.0.0.1:" + strconv.Itoa(port) + Path
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-network-validation"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "networks.berth.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](10),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"berth.io"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"networks"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
		}},
	}
	c := controlplane.Context(t, 2*time.Minute)
	if err := cp.Client.Create(c, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), cfg) })

	// The API server picks the configuration up asynchronously: wait until
	// it refuses a Network only the webhook refuses (a missing pool).
	probe := network1("probe", &berthv1.PoolSelection{IPv4: []string{"no-such-pool"}})
	for {
		err := cp.Client.Create(c, probe.DeepCopy(), client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), `IPPool "no-such-pool" does not exist`) {
			return
		}
		select {
		case <-c.Done():
			t.Fatalf("the webhook never answered; last result: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func network1(name string, pools *berthv1.PoolSelection) *berthv1.Network {
	return &berthv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: berthv1.NetworkSpec{
			CNIType: berthv1.CNITypeMacvlan,
			Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
			IPPools: pools,
		},
	}
}

// writeServingCert writes tls.crt and tls.key for 127.0.0.1, signed by a
// fresh CA whose PEM it returns.
func writeServingCert(t *testing.T, dir string) []byte {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

func createPool(t *testing.T, name, subnet string, networks ...string) {
	t.Helper()
	p := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet, Networks: networks}}
	if err := cp.Client.Create(controlplane.Context(t, 30*time.Second), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), p) })
}

// TestWebhookRejectsBadNetworks goes through the API server: every bad
// Network is refused with a 422 naming the field, the good one is stored.
func TestWebhookRejectsBadNetworks(t *testing.T) {
	serveWebhook(t)
	createPool(t, "wh-v4", "10.20.0.0/16")
	createPool(t, "wh-v6", "fd00:20::/64")
	createPool(t, "wh-elsewhere", "10.21.0.0/16", "other-ns/other-net")
	// Pools naming a Network by its NAD's name (berth.io/nad-name), which
	// is the name pods use: this namespace's, any namespace's, another's.
	createPool(t, "wh-by-nad", "10.22.0.0/16", "default/blue-nad")
	createPool(t, "wh-by-bare-nad", "10.23.0.0/16", "blue-nad")
	createPool(t, "wh-other-nad", "10.24.0.0/16", "other-ns/blue-nad")

	mk := func(name string, mutate func(*berthv1.Network)) *berthv1.Network {
		nw := network1(name, nil)
		mutate(nw)
		return nw
	}
	tests := []struct {
		name string
		nw   *berthv1.Network
		want string // "" = accepted
	}{
		{"good", mk("good", func(n *berthv1.Network) {
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-v4"}, IPv6: []string{"wh-v6"}}
		}), ""},
		{"missing pool", mk("missing-pool", func(n *berthv1.Network) {
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-v4", "wh-nope"}}
		}), `spec.ippools.ipv4[1]: Invalid value: "wh-nope": IPPool "wh-nope" does not exist`},
		{"wrong family", mk("wrong-family", func(n *berthv1.Network) {
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-v6"}}
		}), `spec.ippools.ipv4[0]: Invalid value: "wh-v6": IPPool "wh-v6" is an IPv6 pool (fd00:20::/64), not IPv4`},
		{"pool of another network", mk("not-served", func(n *berthv1.Network) {
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-elsewhere"}}
		}), `IPPool "wh-elsewhere" serves only the networks [other-ns/other-net]`},
		{"pools naming the Network's NAD", mk("blue", func(n *berthv1.Network) {
			n.Annotations = map[string]string{network.AnnotationNADName: "blue-nad"}
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-by-nad", "wh-by-bare-nad"}}
		}), ""},
		{"a pool naming another namespace's NAD of that name", mk("blue2", func(n *berthv1.Network) {
			n.Annotations = map[string]string{network.AnnotationNADName: "blue2-nad"}
			n.Spec.IPPools = &berthv1.PoolSelection{IPv4: []string{"wh-other-nad"}}
		}), `spec.ippools.ipv4[0]: Invalid value: "wh-other-nad": IPPool "wh-other-nad" serves only the networks [other-ns/blue-nad]`},
		{"unknown mode", mk("bad-mode", func(n *berthv1.Network) {
			// The CRD's enum answers first for the typed field: either way
			// the user is told which field and which values.
			n.Spec.Macvlan.Mode = "l2"
		}), `spec.macvlan.mode: Unsupported value: "l2"`},
		{"sub-interface too long", mk("long-vlan", func(n *berthv1.Network) {
			n.Spec.Macvlan.Master = []string{"enp129s0f0np0"}
			n.Spec.Macvlan.VLANID = 100
		}), `the VLAN sub-interface name "enp129s0f0np0.100" would be longer than 15 characters`},
		{"custom not JSON", &berthv1.Network{
			ObjectMeta: metav1.ObjectMeta{Name: "custom-bad", Namespace: "default"},
			Spec:       berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: `{"type":`}},
		}, "spec.custom.config: Invalid value: not a JSON object"},
		{"custom without type", &berthv1.Network{
			ObjectMeta: metav1.ObjectMeta{Name: "custom-notype", Namespace: "default"},
			Spec:       berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: `{"master":"eth0"}`}},
		}, `spec.custom.config: Invalid value: names no "type"`},
		// The CRD schema answers these before the webhook is called; the
		// user sees the field either way.
		{"missing master", mk("no-master", func(n *berthv1.Network) {
			n.Spec.Macvlan.Master = nil
		}), "spec.macvlan.master: Required value"},
		{"vlanID out of range", mk("big-vlan", func(n *berthv1.Network) {
			n.Spec.Macvlan.VLANID = 5000
		}), "spec.macvlan.vlanID: Invalid value: 5000"},
		{"sriov without resourceName", &berthv1.Network{
			ObjectMeta: metav1.ObjectMeta{Name: "sriov-bad", Namespace: "default"},
			Spec:       berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{}},
		}, "spec.sriov.resourceName"},
		{"cni version", mk("bad-version", func(n *berthv1.Network) {
			n.Annotations = map[string]string{network.AnnotationCNIVersion: "0.2.0"}
		}), `metadata.annotations[berth.io/cni-version]: Unsupported value: "0.2.0"`},
		{"nad name taken", mk("second", func(n *berthv1.Network) {
			n.Annotations = map[string]string{network.AnnotationNADName: "good"}
		}), `metadata.annotations[berth.io/nad-name]: Invalid value: "good": NetworkAttachmentDefinition "good" is already generated by Network "good"`},
	}
	outer := t
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := controlplane.Context(t, 30*time.Second)
			err := cp.Client.Create(c, tc.nw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				// Kept to the end: later cases collide with it.
				outer.Cleanup(func() { _ = cp.Client.Delete(context.Background(), tc.nw) })
				return
			}
			if err == nil {
				_ = cp.Client.Delete(context.Background(), tc.nw)
				t.Fatalf("stored; want refusal containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant 422 Invalid containing %q", err, tc.want)
			}
		})
	}
}

// TestWebhookRatchetsDeletedPools: a pool deleted after the Network was
// written does not block an unrelated edit, but cannot be newly added.
func TestWebhookRatchetsDeletedPools(t *testing.T) {
	serveWebhook(t)
	c := controlplane.Context(t, time.Minute)
	pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "wh-gone"}, Spec: berthv1.IPPoolSpec{Subnet: "10.30.0.0/16"}}
	if err := cp.Client.Create(c, pool); err != nil {
		t.Fatal(err)
	}
	nw := network1("ratchet", &berthv1.PoolSelection{IPv4: []string{"wh-gone"}})
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), nw) })
	if err := cp.Client.Delete(c, pool); err != nil {
		t.Fatal(err)
	}
	// Wait until the validator's cache and the API reader both miss it.
	for {
		err := cp.Client.Get(c, client.ObjectKeyFromObject(pool), &berthv1.IPPool{})
		if apierrors.IsNotFound(err) {
			break
		}
		if c.Err() != nil {
			t.Fatal("pool never went away")
		}
		time.Sleep(50 * time.Millisecond)
	}
	nw.Labels = map[string]string{"touched": "yes"}
	if err := cp.Client.Update(c, nw); err != nil {
		t.Fatalf("an unrelated edit was refused because of an already-listed deleted pool: %v", err)
	}
	nw.Spec.IPPools.IPv4 = append(nw.Spec.IPPools.IPv4, "wh-also-gone")
	err := cp.Client.Update(c, nw)
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) || !strings.Contains(err.Error(), `spec.ippools.ipv4[1]: Invalid value: "wh-also-gone"`) {
		t.Fatalf("adding a missing pool: %v", err)
	}
	if strings.Contains(err.Error(), "wh-gone\"") && strings.Contains(err.Error(), "ipv4[0]") {
		t.Errorf("the already-listed pool was reported again: %v", err)
	}
}
