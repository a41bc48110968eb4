package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/tests/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.Main(m, controlplane.Options{}, &cp)) }

// webhookConfigs creates a mutating and a validating configuration whose
// webhooks match nothing (an object selector no object carries), so they
// never get in the way of the API server.
func webhookConfigs(t *testing.T, name string) {
	t.Helper()
	ctx := controlplane.Context(t, 30*time.Second)
	none := admissionregistrationv1.SideEffectClassNone
	hook := func(n string) (admissionregistrationv1.WebhookClientConfig, []admissionregistrationv1.RuleWithOperations, *metav1.LabelSelector) {
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/" + n)},
			[]admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			&metav1.LabelSelector{MatchLabels: map[string]string{"never": "matched"}}
	}
	cc, rules, sel := hook("m")
	mut := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.MutatingWebhook{
		{Name: "a.berth.io", ClientConfig: cc, Rules: rules, ObjectSelector: sel, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}},
		{Name: "b.berth.io", ClientConfig: cc, Rules: rules, ObjectSelector: sel, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}},
	}}
	val := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.ValidatingWebhook{
		{Name: "v.berth.io", ClientConfig: cc, Rules: rules, ObjectSelector: sel, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}},
	}}
	for _, obj := range []client.Object{mut, val} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func options(ns, name string) Options {
	return Options{
		Namespace: ns, Name: name,
		DNSNames: []string{"berth-webhook." + ns + ".svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		MutatingWebhookConfigurations: []string{name}, ValidatingWebhookConfigurations: []string{name},
	}
}

// handshake serves m's certificate on loopback and dials it trusting only
// the bundle, as the API server does.
func handshake(t *testing.T, m *Manager, bundle []byte) *x509.Certificate {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("bundle holds no certificate")
	}
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "berth-webhook." + m.opts.Namespace + ".svc"})
	if err != nil {
		t.Fatalf("TLS handshake trusting the bundle: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func TestReplicasShareOneSecret(t *testing.T) {
	namespace(t, "share")
	webhookConfigs(t, "share")
	ctx := controlplane.Context(t, time.Minute)
	const replicas = 4
	managers := make([]*Manager, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range managers {
		m, err := New(cp.Client, options("share", "share"))
		if err != nil {
			t.Fatal(err)
		}
		managers[i] = m
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.Ensure(ctx) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	secret := &corev1.Secret{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "share", Name: "share"}, secret); err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %q", secret.Type)
	}
	for i, m := range managers {
		cert, _ := m.GetCertificate(nil)
		if string(cert.Certificate[0]) != string(mustDER(t, secret.Data[KeyCert])) {
			t.Errorf("replica %d serves a certificate other than the Secret's", i)
		}
		if err := m.Ready(nil); err != nil {
			t.Errorf("replica %d not ready: %v", i, err)
		}
		handshake(t, m, secret.Data[KeyBundle])
	}
	mut := &admissionregistrationv1.MutatingWebhookConfiguration{}
	val := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "share"}, mut); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "share"}, val); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{mut.Webhooks[0].ClientConfig.CABundle, mut.Webhooks[1].ClientConfig.CABundle, val.Webhooks[0].ClientConfig.CABundle} {
		if string(b) != string(secret.Data[KeyBundle]) {
			t.Errorf("a webhook's caBundle is not the Secret's bundle")
		}
	}
	// A pass with nothing due writes nothing.
	rv := secret.ResourceVersion
	if err := managers[0].Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "share", Name: "share"}, secret); err != nil {
		t.Fatal(err)
	}
	if secret.ResourceVersion != rv {
		t.Errorf("an idle pass rewrote the Secret")
	}
}

func mustDER(t *testing.T, pemData []byte) []byte {
	t.Helper()
	certs, err := parseCerts(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].Raw
}

func TestRotation(t *testing.T) {
	namespace(t, "rotate")
	webhookConfigs(t, "rotate")
	ctx := controlplane.Context(t, time.Minute)
	clk := clocktesting.NewFakeClock(time.Now())
	opts := options("rotate", "rotate")
	opts.Clock = clk
	// Serving certificates long enough that the CA comes due before them.
	opts.CertValidity = 4 * 365 * 24 * time.Hour
	m, err := New(cp.Client, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts = m.opts // with the defaults
	read := func() (ca, serving *x509.Certificate, bundle []*x509.Certificate, secret *corev1.Secret) {
		t.Helper()
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		secret = &corev1.Secret{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "rotate", Name: "rotate"}, secret); err != nil {
			t.Fatal(err)
		}
		cas, _ := parseCerts(secret.Data[KeyCA])
		certs, _ := parseCerts(secret.Data[KeyCert])
		bundle, _ = parseCerts(secret.Data[KeyBundle])
		mut := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "rotate"}, mut); err != nil {
			t.Fatal(err)
		}
		if string(mut.Webhooks[0].ClientConfig.CABundle) != string(secret.Data[KeyBundle]) {
			t.Fatal("caBundle not updated after the pass")
		}
		return cas[0], certs[0], bundle, secret
	}
	ca0, cert0, bundle, _ := read()
	if len(bundle) != 1 || !signedBy(cert0, ca0) {
		t.Fatalf("first pass: %d CAs in the bundle, serving signed by CA: %v", len(bundle), signedBy(cert0, ca0))
	}

	// The serving certificate comes due: reissued by the same CA.
	clk.Step(opts.CertValidity - 89*24*time.Hour)
	ca1, cert1, bundle, _ := read()
	if !ca1.Equal(ca0) || cert1.Equal(cert0) || !signedBy(cert1, ca0) || len(bundle) != 1 {
		t.Fatalf("certificate rotation: same CA %v, new cert %v, signed %v, %d CAs", ca1.Equal(ca0), !cert1.Equal(cert0), signedBy(cert1, ca0), len(bundle))
	}

	// The CA comes due: step one trusts the next CA and signs nothing new.
	clk.SetTime(ca0.NotAfter.Add(-364 * 24 * time.Hour))
	ca2, cert2, bundle, secret := read()
	if !ca2.Equal(ca0) || !cert2.Equal(cert1) || len(bundle) != 2 || secret.Data[KeyNextCA] == nil {
		t.Fatalf("CA rotation step one: same CA %v, same cert %v, %d CAs in the bundle", ca2.Equal(ca0), cert2.Equal(cert1), len(bundle))
	}
	next, _ := parseCerts(secret.Data[KeyNextCA])

	// Before the propagation delay nothing moves.
	clk.Step(opts.Propagation / 2)
	_, cert3, _, _ := read()
	if !cert3.Equal(cert1) {
		t.Fatal("the next CA signed before the propagation delay")
	}

	// Step two: the next CA signs; the old one stays trusted.
	clk.Step(opts.Propagation)
	ca4, cert4, bundle, secret := read()
	if !ca4.Equal(next[0]) || !signedBy(cert4, next[0]) || len(bundle) != 2 || secret.Data[KeyNextCA] != nil {
		t.Fatalf("CA rotation step two: CA is the next %v, signed by it %v, %d CAs in the bundle", ca4.Equal(next[0]), signedBy(cert4, next[0]), len(bundle))
	}

	// Once the old CA has expired it leaves the bundle.
	clk.SetTime(ca0.NotAfter.Add(time.Hour))
	_, _, bundle, _ = read()
	if len(bundle) != 1 || !bundle[0].Equal(next[0]) {
		t.Fatalf("after the old CA expired: %d CAs in the bundle", len(bundle))
	}
}

func TestDamagedSecretIsReplaced(t *testing.T) {
	namespace(t, "damaged")
	webhookConfigs(t, "damaged")
	ctx := controlplane.Context(t, time.Minute)
	if err := cp.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "damaged", Name: "damaged"},
		Data: map[string][]byte{KeyCA: []byte("not PEM"), KeyCert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}}); err != nil {
		t.Fatal(err)
	}
	m, err := New(cp.Client, options("damaged", "damaged"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(nil); err == nil {
		t.Fatal("ready before any certificate was loaded")
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "damaged", Name: "damaged"}, secret); err != nil {
		t.Fatal(err)
	}
	handshake(t, m, secret.Data[KeyBundle])
}
