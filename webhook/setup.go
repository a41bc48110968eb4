package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/allocator/controllers"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	netvalidate "github.com/berth-io/berth/network/validate"
	"github.com/berth-io/berth/policies"
	"github.com/berth-io/berth/webhook/allocationvalidator"
	"github.com/berth-io/berth/webhook/metrics"
	"github.com/berth-io/berth/webhook/podmutator"
	"github.com/berth-io/berth/webhook/podvalidator"
	"github.com/berth-io/berth/webhook/policyvalidator"
	"github.com/berth-io/berth/webhook/poolvalidator"
)

// Options configure the handlers.
type Options struct {
	// Namespace is Berth's; its pods, and kube-system's, are never mutated.
	Namespace string
	// ServiceAccount is Berth's username, allowed to change what it wrote.
	ServiceAccount string
	// Timeout bounds one pod admission inside the webhook; zero is 8 s,
	// under DefaultTimeoutSeconds.
	Timeout time.Duration
	// ReservationTTL is the controllers'; a younger reservation may not be
	// deleted by hand. Zero is their default.
	ReservationTTL time.Duration
}

// Dependencies are the parts the handlers call, built by the caller.
type Dependencies struct {
	Policies  policies.Evaluator
	Allocator allocator.Interface
	// Usage may be nil.
	Usage allocator.Usage
	// Metrics is the registry of the webhook's collectors (the manager's).
	Metrics prometheus.Registerer
}

// Setup registers every handler on mgr's webhook server and starts the
// informers the pod mutation reads, so the first admission does not wait
// for them. It returns the metrics recorder for the caller's own use.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options, d Dependencies) (*metrics.Recorder, error) {
	if d.Policies == nil || d.Allocator == nil || d.Metrics == nil {
		return nil, errors.New("webhook: Policies, Allocator and Metrics are required")
	}
	rec, err := metrics.New(d.Metrics)
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&corev1.Namespace{}, &corev1.Node{}, &berthv1.Network{}, &nadv1.NetworkAttachmentDefinition{}, &berthv1.IPPool{}, &berthv1.Coordinator{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("webhook: starting the informer of %T: %w", obj, err)
		}
	}
	exempt := []string{"kube-system"}
	if o.Namespace != "" {
		exempt = append(exempt, o.Namespace)
	}
	mutator, err := podmutator.New(podmutator.Dependencies{
		Cache: mgr.GetCache(), APIReader: mgr.GetAPIReader(), Policies: d.Policies, Allocator: d.Allocator, Usage: d.Usage,
		Scheme: mgr.GetScheme(), Metrics: rec, ServiceAccount: o.ServiceAccount, ExemptNamespaces: exempt, Timeout: o.Timeout,
	})
	if err != nil {
		return nil, err
	}
	srv := mgr.GetWebhookServer()
	srv.Register(PathMutatePod, &webhook.Admission{Handler: mutator})
	srv.Register(PathValidatePod, &webhook.Admission{Handler: &podvalidator.Validator{ServiceAccount: o.ServiceAccount, Metrics: rec}})
	srv.Register(PathValidateIPPool, &webhook.Admission{Handler: poolvalidator.New(mgr.GetCache(), mgr.GetAPIReader(), mgr.GetScheme(), rec)})
	srv.Register(PathValidateIPAllocation, &webhook.Admission{Handler: &allocationvalidator.Validator{
		ServiceAccount: o.ServiceAccount, Metrics: rec,
		Keeper: &controllers.Keeper{APIReader: mgr.GetAPIReader(), TTL: o.ReservationTTL},
	}})
	srv.Register(PathValidateAttachmentPol, &webhook.Admission{Handler: policyvalidator.New(policies.Validate, policies.FormatErrors, mgr.GetScheme(), rec)})
	nv := &netvalidate.Validator{Reader: mgr.GetCache(), APIReader: mgr.GetAPIReader()}
	if err := nv.SetupWebhookWithManager(mgr); err != nil {
		return nil, fmt.Errorf("webhook: registering the Network validator: %w", err)
	}
	return rec, nil
}

// CachesSynced is a readyz check: the manager's informers have synced.
func CachesSynced(mgr ctrl.Manager) func(*http.Request) error {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informer caches not synced")
		}
		return nil
	}
}
