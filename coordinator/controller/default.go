package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
)

// +kubebuilder:rbac:groups=berth.io,resources=coordinators,verbs=create

// DefaultName is the controller that keeps the Coordinator in existence,
// and the field manager of the object it creates.
const DefaultName = "berth-coordinator-default"

// Defaulter creates the Coordinator "default" when there is none: without
// it every pod of a Network that needs berth-coordinator is refused, so a
// fresh install would refuse them until an admin wrote one. It creates the
// object only: an existing Coordinator, whoever wrote it, is never changed,
// and what it creates (podCIDRType auto, nothing else) is what the CRD
// defaults an empty spec to, so applying examples/coordinator.yaml (or any
// manifest) over it takes over every field.
type Defaulter struct {
	client client.Client
	events events.EventRecorder
}

// SetupDefaultWithManager adds the Defaulter to mgr as a controller, so it
// runs in the leader only: at start, and whenever a Coordinator is deleted.
func SetupDefaultWithManager(mgr ctrl.Manager) error {
	d := &Defaulter{client: mgr.GetClient(), events: mgr.GetEventRecorder(DefaultName)}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: coordinator.Name}}
	// The watch brings nothing at start when no Coordinator exists: this
	// source asks once.
	atStart := source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(req)
		return nil
	})
	onlyDeletes := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(DefaultName).
		For(&berthv1.Coordinator{}, builder.WithPredicates(onlyDeletes)).
		WatchesRawSource(atStart).
		Complete(d)
	if err != nil {
		return fmt.Errorf("building the %s controller: %w", DefaultName, err)
	}
	return nil
}

// Reconcile creates the Coordinator "default" if the cache has none.
// Create is the test: AlreadyExists (a cache behind the API server, or a
// Coordinator still terminating, whose deletion brings another request)
// leaves everything as it is.
func (d *Defaulter) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Name != coordinator.Name {
		return reconcile.Result{}, nil
	}
	err := d.client.Get(ctx, req.NamespacedName, &berthv1.Coordinator{})
	switch {
	case err == nil:
		return reconcile.Result{}, nil
	case !apierrors.IsNotFound(err):
		return reconcile.Result{}, fmt.Errorf("reading Coordinator %q: %w", coordinator.Name, err)
	}
	c := defaultCoordinator()
	err = d.client.Create(ctx, c, client.FieldOwner(DefaultName))
	switch {
	case apierrors.IsAlreadyExists(err):
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("creating Coordinator %q: %w", coordinator.Name, err)
	}
	log.FromContext(ctx).Info("created the Coordinator: there was none", "podCIDRType", c.Spec.PodCIDRType)
	d.events.Eventf(c, nil, corev1.EventTypeNormal, "Created", "Create",
		"there was no Coordinator %q: created one with podCIDRType %s; edit or apply over it to change the defaults", c.Name, c.Spec.PodCIDRType)
	return reconcile.Result{}, nil
}

// defaultCoordinator is the Coordinator the Defaulter creates.
func defaultCoordinator() *berthv1.Coordinator {
	return &berthv1.Coordinator{
		ObjectMeta: metav1.ObjectMeta{Name: coordinator.Name},
		Spec:       berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRAuto},
	}
}
