// Package certs keeps the webhook's serving certificate when Berth manages
// its own CA: the CA and the certificate live in one Secret that every
// replica reads and writes with optimistic concurrency (the first to create
// it wins, a replica losing a race re-reads), the CA bundle is patched into
// Berth's webhook configurations, and both are rotated well before expiry.
//
// A CA rotation takes two steps so that the API server never meets a
// certificate it cannot verify: the next CA first joins the bundle next to
// the current one; only after Propagation has passed is the serving
// certificate reissued by it. The old CA stays in the bundle until it
// expires.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Keys of the Secret. tls.crt and tls.key make it a kubernetes.io/tls
// Secret that cert tooling understands.
const (
	KeyCert        = corev1.TLSCertKey       // tls.crt: the serving certificate
	KeyKey         = corev1.TLSPrivateKeyKey // tls.key
	KeyCA          = "ca.crt"                // the CA that signed tls.crt
	KeyCAKey       = "ca.key"
	KeyNextCA      = "ca-next.crt" // the CA taking over, already trusted
	KeyNextCAKey   = "ca-next.key"
	KeyBundle      = "ca-bundle.crt" // what clients trust: current, next, older CAs
	annNextCASince = "berth.io/ca-next-since"
)

// Options configure a Manager.
type Options struct {
	// Namespace and Name of the Secret.
	Namespace, Name string
	// DNSNames and IPs the serving certificate is for (the Service's names;
	// 127.0.0.1 when the API server calls a webhook on loopback).
	DNSNames []string
	IPs      []net.IP
	// MutatingWebhookConfigurations and ValidatingWebhookConfigurations
	// get the CA bundle in every webhook's clientConfig.caBundle.
	MutatingWebhookConfigurations   []string
	ValidatingWebhookConfigurations []string
	// CAValidity and CertValidity: defaults 5 years and 1 year.
	CAValidity, CertValidity time.Duration
	// CARotateBefore and CertRotateBefore: how long before expiry a
	// certificate is replaced; defaults 1 year and 90 days.
	CARotateBefore, CertRotateBefore time.Duration
	// Propagation is how long the next CA is trusted before it signs;
	// default 10 minutes (the API server reloads webhook configurations
	// within seconds; replicas re-read the Secret every Interval).
	Propagation time.Duration
	// Interval between checks; default 1 minute.
	Interval time.Duration
	// Clock measures validity; default the real clock.
	Clock clock.WithTicker
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CAValidity, 5*365*24*time.Hour)
	def(&o.CertValidity, 365*24*time.Hour)
	def(&o.CARotateBefore, 365*24*time.Hour)
	def(&o.CertRotateBefore, 90*24*time.Hour)
	def(&o.Propagation, 10*time.Minute)
	def(&o.Interval, time.Minute)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Manager keeps the Secret, the in-memory serving certificate and the
// webhook configurations' CA bundles current. It runs on every replica.
type Manager struct {
	c    client.Client
	opts Options

	mu      sync.RWMutex
	cert    *tls.Certificate
	bundle  []byte
	patched bool
}

// New returns a Manager; c must read uncached (the Secret is written by
// other replicas) and write to the API server.
func New(c client.Client, opts Options) (*Manager, error) {
	if opts.Namespace == "" || opts.Name == "" {
		return nil, errors.New("certs: the Secret's namespace and name are required")
	}
	if len(opts.DNSNames) == 0 && len(opts.IPs) == 0 {
		return nil, errors.New("certs: at least one DNS name or IP address is required")
	}
	opts.defaults()
	return &Manager{c: c, opts: opts}, nil
}

// NeedLeaderElection is false: every replica serves, so every replica needs
// the certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start ensures the certificate, then checks every Interval until ctx ends.
// Failures are logged and retried: the served certificate stays valid long
// after a rotation is due.
func (m *Manager) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("certs")
	t := m.opts.Clock.NewTicker(m.opts.Interval)
	defer t.Stop()
	retryAfter := time.Second
	for {
		if err := m.Ensure(ctx); err != nil {
			log.Error(err, "keeping the webhook certificate")
			select {
			case <-ctx.Done():
				return nil
			case <-m.opts.Clock.After(retryAfter):
			}
			retryAfter = min(2*retryAfter, m.opts.Interval)
			continue
		}
		retryAfter = time.Second
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return nil, errors.New("the webhook serving certificate is not loaded yet")
	}
	return m.cert, nil
}

// Bundle is the CA bundle clients should trust.
func (m *Manager) Bundle() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.bundle
}

// Ready is a readyz check: the certificate is loaded and the webhook
// configurations carry its CA.
func (m *Manager) Ready(*http.Request) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.cert == nil:
		return errors.New("webhook serving certificate not loaded")
	case !m.patched:
		return errors.New("CA bundle not yet in the webhook configurations")
	}
	return nil
}

// Ensure makes one pass: create or renew the Secret as needed, load the
// certificate, patch the bundle into the webhook configurations.
func (m *Manager) Ensure(ctx context.Context) error {
	var s *state
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		s, err = m.sync(ctx)
		return err
	})
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(s.serving.certPEM, s.serving.keyPEM)
	if err != nil {
		return fmt.Errorf("secret %s/%s: %s and %s do not form a key pair: %w", m.opts.Namespace, m.opts.Name, KeyCert, KeyKey, err)
	}
	m.mu.Lock()
	m.cert, m.bundle = &cert, s.bundle
	m.mu.Unlock()
	if err := m.patchBundles(ctx, s.bundle); err != nil {
		return err
	}
	m.mu.Lock()
	m.patched = true
	m.mu.Unlock()
	return nil
}

// sync reads the Secret, renews what is due and writes it back. A Conflict
// or AlreadyExists means another replica wrote first: the caller retries
// from a fresh read (AlreadyExists is returned as a Conflict for that).
func (m *Manager) sync(ctx context.Context) (*state, error) {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: m.opts.Namespace, Name: m.opts.Name}
	err := m.c.Get(ctx, key, secret)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading secret %s: %w", key, err)
	}
	now := m.opts.Clock.Now()
	s, changed, err := m.renew(readState(secret, now), now)
	if err != nil {
		return nil, err
	}
	if !changed {
		return s, nil
	}
	s.write(secret)
	if !exists {
		secret.Namespace, secret.Name = m.opts.Namespace, m.opts.Name
		secret.Type = corev1.SecretTypeTLS
		if err := m.c.Create(ctx, secret); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil, apierrors.NewConflict(corev1.Resource("secrets"), m.opts.Name, err)
			}
			return nil, fmt.Errorf("creating secret %s: %w", key, err)
		}
		return s, nil
	}
	if err := m.c.Update(ctx, secret); err != nil {
		if apierrors.IsConflict(err) {
			return nil, err
		}
		return nil, fmt.Errorf("updating secret %s: %w", key, err)
	}
	return s, nil
}

// state is what the Secret holds, parsed.
type state struct {
	ca, next, serving *keyPair
	nextSince         time.Time
	// older are CAs found in the old bundle, kept until they expire.
	older  []*keyPair
	bundle []byte
}

func readState(secret *corev1.Secret, now time.Time) *state {
	s := &state{}
	d := secret.Data
	// Anything that does not parse is as good as absent: it is regenerated.
	s.ca, _ = parseKeyPair(d[KeyCA], d[KeyCAKey])
	s.next, _ = parseKeyPair(d[KeyNextCA], d[KeyNextCAKey])
	s.serving, _ = parseKeyPair(d[KeyCert], d[KeyKey])
	if t, err := time.Parse(time.RFC3339, secret.Annotations[annNextCASince]); err == nil {
		s.nextSince = t
	}
	if certs, err := parseCerts(d[KeyBundle]); err == nil {
		for _, c := range certs {
			if now.Before(c.NotAfter) {
				s.older = append(s.older, &keyPair{cert: c})
			}
		}
	}
	s.bundle = d[KeyBundle]
	return s
}

func (s *state) write(secret *corev1.Secret) {
	secret.Data = map[string][]byte{
		KeyCA: s.ca.certPEM, KeyCAKey: s.ca.keyPEM,
		KeyCert: s.serving.certPEM, KeyKey: s.serving.keyPEM,
		KeyBundle: s.bundle,
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	delete(secret.Annotations, annNextCASince)
	if s.next != nil {
		secret.Data[KeyNextCA], secret.Data[KeyNextCAKey] = s.next.certPEM, s.next.keyPEM
		secret.Annotations[annNextCASince] = s.nextSince.UTC().Format(time.RFC3339)
	}
}

// renew decides what is due at now and reports whether anything changed.
func (m *Manager) renew(s *state, now time.Time) (*state, bool, error) {
	o := &m.opts
	changed := false
	var err error
	if s.ca == nil || now.After(s.ca.cert.NotAfter) {
		// No usable CA: start over. Nothing can verify against a CA we do
		// not have, so there is nothing to phase in.
		if s.ca, err = newCA(o.Name, now, o.CAValidity); err != nil {
			return nil, false, err
		}
		s.next, s.serving, changed = nil, nil, true
	}
	if s.next != nil && now.After(s.next.cert.NotAfter) {
		s.next, changed = nil, true
	}
	if s.next == nil && now.Add(o.CARotateBefore).After(s.ca.cert.NotAfter) {
		// Step one of a CA rotation: trust the next CA, sign nothing yet.
		if s.next, err = newCA(o.Name, now, o.CAValidity); err != nil {
			return nil, false, err
		}
		s.nextSince, changed = now, true
	}
	if s.next != nil && !now.Before(s.nextSince.Add(o.Propagation)) {
		// Step two: the next CA has been trusted long enough to sign.
		s.older = append(s.older, s.ca)
		s.ca, s.next, s.serving, changed = s.next, nil, nil, true
	}
	if s.serving == nil || !signedBy(s.serving.cert, s.ca.cert) || !covers(s.serving.cert, o.DNSNames, o.IPs) ||
		now.Add(o.CertRotateBefore).After(s.serving.cert.NotAfter) {
		if s.serving, err = newServing(s.ca, o.DNSNames, o.IPs, now, o.CertValidity); err != nil {
			return nil, false, err
		}
		changed = true
	}
	certs := []*x509.Certificate{s.ca.cert}
	if s.next != nil {
		certs = append(certs, s.next.cert)
	}
	for _, old := range s.older {
		certs = append(certs, old.cert)
	}
	bundle := bundlePEM(now, certs...)
	if string(bundle) != string(s.bundle) {
		s.bundle, changed = bundle, true
	}
	return s, changed, nil
}

// patchBundles writes the bundle into every webhook of the configured
// webhook configurations. A configuration that does not exist yet (the
// chart installs it with the Deployment) is an error, retried.
func (m *Manager) patchBundles(ctx context.Context, bundle []byte) error {
	for _, name := range m.opts.MutatingWebhookConfigurations {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		err := m.patchBundle(ctx, name, cfg, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
			out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("patching the CA bundle into mutatingwebhookconfiguration %q: %w", name, err)
		}
	}
	for _, name := range m.opts.ValidatingWebhookConfigurations {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		err := m.patchBundle(ctx, name, cfg, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
			out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig
			}
			return out
		})
		if err != nil {
			return fmt.Errorf("patching the CA bundle into validatingwebhookconfiguration %q: %w", name, err)
		}
	}
	return nil
}

// patchBundle reads configuration name into cfg and sets bundle in each of
// the client configs that configs returns from it, writing only on change.
func (m *Manager) patchBundle(ctx context.Context, name string, cfg client.Object, bundle []byte, configs func() []*admissionregistrationv1.WebhookClientConfig) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := m.c.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		changed := false
		for _, cc := range configs() {
			if !bytes.Equal(cc.CABundle, bundle) {
				cc.CABundle, changed = bundle, true
			}
		}
		if !changed {
			return nil
		}
		return m.c.Update(ctx, cfg)
	})
}
