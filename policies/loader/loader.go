// Package loader keeps a policy engine's set equal to the shipped policies
// plus the enabled AttachmentPolicies of the cluster, and reports in each
// AttachmentPolicy's status whether it compiles.
package loader

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

// DefaultPriority is an AttachmentPolicy's priority when the API server has
// not defaulted it (the CRD default is the same).
const DefaultPriority = 100

// setKey is the one work item of the loader: every change reloads the whole
// set, so events collapse into one reload.
var setKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "attachment-policies"}}

// +kubebuilder:rbac:groups=berth.io,resources=attachmentpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=berth.io,resources=attachmentpolicies/status,verbs=get;update;patch

// Loader feeds Engine. It runs in every replica (no leader election): each
// replica's webhook evaluates with its own engine.
type Loader struct {
	// Reader lists AttachmentPolicies, normally the manager's cache.
	Reader client.Reader
	Engine *policies.Engine
	// Shipped are the shipped policies to evaluate (policies.ShippedSources).
	Shipped []policies.Source
}

// SetupWithManager registers the loader. The first reload runs as soon as
// the cache has synced, with or without AttachmentPolicies, so the engine
// becomes ready (policies.Engine.Ready) only with the cluster's policies.
func (l *Loader) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, *berthv1.AttachmentPolicy) []reconcile.Request {
		return []reconcile.Request{setKey}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("attachmentpolicy-loader").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: 1}).
		WatchesRawSource(source.Kind(mgr.GetCache(), &berthv1.AttachmentPolicy{}, all,
			// Status writes do not change what is evaluated.
			predicate.TypedGenerationChangedPredicate[*berthv1.AttachmentPolicy]{})).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(setKey)
			return nil
		})).
		Complete(l)
}

// Reconcile reloads the whole set.
func (l *Loader) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	var list berthv1.AttachmentPolicyList
	if err := l.Reader.List(ctx, &list); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing AttachmentPolicies: %w", err)
	}
	sources := append([]policies.Source(nil), l.Shipped...)
	sources = append(sources, Sources(list.Items)...)
	failed, err := l.Engine.Load(ctx, sources)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("loading %d policies: %w", len(sources), err)
	}
	logger := log.FromContext(ctx)
	for name, errs := range failed {
		// Evaluations fail closed while it stays broken; the status
		// controller reports the details on the object.
		logger.Info("attachment policy does not compile; admissions fail until it is fixed or disabled", "policy", name, "errors", policies.FormatErrors(errs))
	}
	logger.V(1).Info("attachment policies loaded", "count", len(sources))
	return reconcile.Result{}, nil
}

// Sources turns the enabled AttachmentPolicies into engine sources.
func Sources(items []berthv1.AttachmentPolicy) []policies.Source {
	var out []policies.Source
	for i := range items {
		p := &items[i]
		if p.Spec.Enabled != nil && !*p.Spec.Enabled {
			continue
		}
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		priority := p.Spec.Priority
		if priority == 0 {
			priority = DefaultPriority
		}
		out = append(out, policies.Source{Name: p.Name, Priority: priority, Rego: p.Spec.Rego})
	}
	return out
}

// Options configure Setup.
type Options struct {
	// DisabledShipped names shipped policies to leave out (a flag of the
	// controller binary); see policies.ShippedNames.
	DisabledShipped []string
	// Status runs the status controller too; it is leader-elected, so every
	// replica may set it.
	Status bool
}

// Setup wires policy loading into mgr: the Loader feeding engine in every
// replica and, with opts.Status, the StatusController.
func Setup(mgr ctrl.Manager, engine *policies.Engine, opts Options) error {
	shipped, err := policies.ShippedSources(opts.DisabledShipped)
	if err != nil {
		return err
	}
	l := &Loader{Reader: mgr.GetCache(), Engine: engine, Shipped: shipped}
	if err := l.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the attachment policy loader: %w", err)
	}
	if opts.Status {
		s := &StatusController{Client: mgr.GetClient()}
		if err := s.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the attachment policy status controller: %w", err)
		}
	}
	return nil
}
