// Package controller keeps, for every Network, the Multus
// NetworkAttachmentDefinition it describes: created with an owner reference
// to the Network, recreated when deleted, rewritten when edited by hand,
// re-rendered when the Network, its IP pools or the Coordinator's CIDRs
// change. A NAD of that name the Network does not control is left alone
// unless the Network asks to adopt it (or it carries the Network's
// berth.io/network label, as one that lost its owner reference does); the
// status says which.
package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/network/render"
	"github.com/berth-io/berth/network/validate"
)

// RBAC of the controller, for the manifests.
// +kubebuilder:rbac:groups=berth.io,resources=networks,verbs=get;list;watch
// +kubebuilder:rbac:groups=berth.io,resources=networks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=berth.io,resources=networks/finalizers,verbs=update
// +kubebuilder:rbac:groups=berth.io,resources=ippools;coordinators,verbs=get;list;watch
// +kubebuilder:rbac:groups=k8s.cni.cncf.io,resources=network-attachment-definitions,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Name of the controller and of its events' reporter.
const Name = "berth-network"

// Condition types of a Network's status.
const (
	// ConditionNADReady: the NetworkAttachmentDefinition is as rendered.
	ConditionNADReady = "NADReady"
	// ConditionPoolsResolved: every pool of spec.ippools exists.
	ConditionPoolsResolved = "PoolsResolved"
	// ConditionCoordinatorReady: the cluster CIDRs berth-coordinator needs
	// are known (True with reason NotUsed when the chain has none).
	ConditionCoordinatorReady = "CoordinatorReady"
)

// Field indexes the controller registers; named after it so they cannot
// clash with another controller's indexes on the same manager.
const (
	indexNADName      = "network-controller.berth.io/nad-name"
	indexPools        = "network-controller.berth.io/pools"
	indexName         = "network-controller.berth.io/name"
	indexPoolNetworks = "network-controller.berth.io/networks"
	indexController   = "network-controller.berth.io/controller"
)

// Options tune the controller.
type Options struct {
	// NodeKubeconfig is the path, on the nodes, of the kubeconfig berth-ipam
	// and berth-coordinator read when not called through Multus; empty
	// leaves it out of the generated configurations.
	NodeKubeconfig string
}

// Reconciler renders and guards NetworkAttachmentDefinitions.
type Reconciler struct {
	client client.Client
	events events.EventRecorder
	opts   Options
}

// SetupWithManager registers the controller and its field indexes with mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if err := addIndexes(mgr); err != nil {
		return err
	}
	r := &Reconciler{client: mgr.GetClient(), events: mgr.GetEventRecorder(Name), opts: opts}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&berthv1.Network{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&nadv1.NetworkAttachmentDefinition{}, handler.EnqueueRequestsFromMapFunc(r.networksOfNAD)).
		Watches(&berthv1.IPPool{}, handler.EnqueueRequestsFromMapFunc(r.networksOfPool), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&berthv1.Coordinator{}, handler.EnqueueRequestsFromMapFunc(r.allNetworks), builder.WithPredicates(coordinatorChanged())).
		Complete(r)
	if err != nil {
		return fmt.Errorf("building the network controller: %w", err)
	}
	return nil
}

func addIndexes(mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	ctx := context.Background()
	for _, i := range []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&berthv1.Network{}, indexNADName, func(o client.Object) []string { return []string{network.NADName(o.(*berthv1.Network))} }},
		{&berthv1.Network{}, indexPools, func(o client.Object) []string { return network.Pools(o.(*berthv1.Network)) }},
		{&berthv1.Network{}, indexName, func(o client.Object) []string { return []string{o.GetName()} }},
		{&berthv1.IPPool{}, indexPoolNetworks, func(o client.Object) []string { return o.(*berthv1.IPPool).Spec.Networks }},
		{&nadv1.NetworkAttachmentDefinition{}, indexController, func(o client.Object) []string {
			if ref := controllerNetwork(o); ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
	} {
		if err := idx.IndexField(ctx, i.obj, i.field, i.fn); err != nil {
			return fmt.Errorf("indexing %T by %s: %w", i.obj, i.field, err)
		}
	}
	return nil
}

// controllerNetwork is o's controller reference when it is a Network.
func controllerNetwork(o metav1.Object) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != "Network" || ref.APIVersion != berthv1.GroupVersion.String() {
		return nil
	}
	return ref
}

// coordinatorChanged passes Coordinator updates that change what NADs are
// rendered from: the spec, or the detected CIDRs and phase.
func coordinatorChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*berthv1.Coordinator)
		n, ok2 := e.ObjectNew.(*berthv1.Coordinator)
		if !ok1 || !ok2 {
			return true
		}
		return o.Generation != n.Generation || o.Status.Phase != n.Status.Phase ||
			!slices.Equal(o.Status.PodCIDRs, n.Status.PodCIDRs) || !slices.Equal(o.Status.ServiceCIDRs, n.Status.ServiceCIDRs) ||
			o.Status.Reason != n.Status.Reason
	}}
}

// networksOfNAD maps a NAD to the Network controlling it and to the
// Networks that want its name (so one waiting for a NAD to go, or to be
// adoptable, hears about it).
func (r *Reconciler) networksOfNAD(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	if ref := controllerNetwork(o); ref != nil {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}})
	}
	var list berthv1.NetworkList
	if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexNADName: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing Networks by NAD name", "nad", client.ObjectKeyFromObject(o))
		return reqs
	}
	return appendRequests(reqs, list.Items)
}

// networksOfPool maps a pool to the Networks naming it in spec.ippools and
// to those it names in spec.networks, by their own name or their NAD's.
func (r *Reconciler) networksOfPool(ctx context.Context, o client.Object) []reconcile.Request {
	pool := o.(*berthv1.IPPool)
	var reqs []reconcile.Request
	var list berthv1.NetworkList
	if err := r.client.List(ctx, &list, client.MatchingFields{indexPools: pool.Name}); err != nil {
		log.FromContext(ctx).Error(err, "listing Networks by pool", "pool", pool.Name)
	}
	reqs = appendRequests(reqs, list.Items)
	for _, ref := range pool.Spec.Networks {
		opts := []client.ListOption(nil)
		ns, name, qualified := strings.Cut(ref, "/")
		if qualified {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
			opts = append(opts, client.InNamespace(ns))
		} else {
			name = ref
			var named berthv1.NetworkList
			if err := r.client.List(ctx, &named, client.MatchingFields{indexName: name}); err != nil {
				log.FromContext(ctx).Error(err, "listing Networks by name", "name", name)
			}
			reqs = appendRequests(reqs, named.Items)
		}
		var byNAD berthv1.NetworkList
		if err := r.client.List(ctx, &byNAD, append(opts, client.MatchingFields{indexNADName: name})...); err != nil {
			log.FromContext(ctx).Error(err, "listing Networks by NAD name", "name", ref)
		}
		reqs = appendRequests(reqs, byNAD.Items)
	}
	return reqs
}

func (r *Reconciler) allNetworks(ctx context.Context, _ client.Object) []reconcile.Request {
	var list berthv1.NetworkList
	if err := r.client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing Networks")
		return nil
	}
	return appendRequests(nil, list.Items)
}

func appendRequests(reqs []reconcile.Request, nws []berthv1.Network) []reconcile.Request {
	for i := range nws {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&nws[i])})
	}
	return reqs
}

// outcome is what a reconcile found, for the status.
type outcome struct {
	phase   berthv1.NetworkPhase
	nadName string
	message string
	conds   []metav1.Condition
	// requeue after this long (0: only on events)
	after time.Duration
}

func (o *outcome) set(typ string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	o.conds = append(o.conds, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg})
}

func (o *outcome) fail(reason, msg string) {
	o.phase, o.message = berthv1.NetworkFailed, msg
	o.set(ConditionNADReady, false, reason, msg)
}

// Reconcile brings the Network's NAD and status in line.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	nw := &berthv1.Network{}
	if err := r.client.Get(ctx, req.NamespacedName, nw); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if nw.DeletionTimestamp != nil {
		return reconcile.Result{}, nil // the garbage collector removes the NAD with it
	}
	out, err := r.sync(ctx, nw)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.writeStatus(ctx, nw, out); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: out.after}, nil
}

// sync renders the NAD and writes it when allowed. Errors returned are
// transient (API calls); problems of the Network itself end in the outcome.
func (r *Reconciler) sync(ctx context.Context, nw *berthv1.Network) (*outcome, error) {
	out := &outcome{phase: berthv1.NetworkReady, nadName: network.NADName(nw)}
	if errs := validate.Static(nw); len(errs) > 0 {
		out.fail("InvalidSpec", errs.ToAggregate().Error())
		return out, nil
	}
	coord, err := coordinator.Get(ctx, r.client)
	if err != nil {
		return nil, err
	}
	pools, missing, err := r.pools(ctx, nw)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		out.set(ConditionPoolsResolved, false, "PoolNotFound", fmt.Sprintf("IPPool(s) %v do not exist: the NAD carries no routing data for them", missing))
	} else {
		out.set(ConditionPoolsResolved, true, "Found", "")
	}
	switch {
	case !network.NeedsCoordinator(nw, coord):
		out.set(ConditionCoordinatorReady, true, "NotUsed", "berth-coordinator is not in the chain")
	case coordinator.Ready(coord) != nil:
		// The NAD is still written with what is known; the webhook denies
		// the pods that would need the missing CIDRs.
		out.set(ConditionCoordinatorReady, false, "NotReady", coordinator.Ready(coord).Error())
	default:
		out.set(ConditionCoordinatorReady, true, "Synced", "")
	}

	want, err := render.NAD(render.Input{Network: nw, Pools: pools, Coordinator: coord, NodeKubeconfig: r.opts.NodeKubeconfig})
	if err != nil {
		out.fail("RenderFailed", err.Error())
		return out, nil
	}
	if err := r.apply(ctx, nw, want, out); err != nil {
		return nil, err
	}
	if err := r.deleteStale(ctx, nw, want.Name); err != nil {
		return nil, err
	}
	return out, nil
}

// pools returns the pools whose data the NAD carries: those of
// spec.ippools and those that list the Network in spec.networks. missing
// names the spec.ippools entries that do not exist.
func (r *Reconciler) pools(ctx context.Context, nw *berthv1.Network) (pools []berthv1.IPPool, missing []string, err error) {
	for _, name := range network.Pools(nw) {
		p := berthv1.IPPool{}
		err := r.client.Get(ctx, client.ObjectKey{Name: name}, &p)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, name)
		case err != nil:
			return nil, nil, fmt.Errorf("reading IPPool %q for network %s/%s: %w", name, nw.Namespace, nw.Name, err)
		default:
			pools = append(pools, p)
		}
	}
	// Every entry that names the Network by one of its names (network.Keys:
	// the Network's and its NAD's, qualified or bare); the index holds the
	// entries as written. render.IPAM drops the duplicates.
	for _, key := range network.Keys(network.NADKey(nw), nw) {
		_, name, _ := strings.Cut(key, "/")
		for _, ref := range []string{key, name} {
			var list berthv1.IPPoolList
			if err := r.client.List(ctx, &list, client.MatchingFields{indexPoolNetworks: ref}); err != nil {
				return nil, nil, fmt.Errorf("listing IPPools serving network %s/%s: %w", nw.Namespace, nw.Name, err)
			}
			for i := range list.Items {
				// The index finds the candidates by the texts an entry
				// may have; ServesNetwork is the rule.
				if network.ServesNetwork(&list.Items[i], nw) {
					pools = append(pools, list.Items[i])
				}
			}
		}
	}
	return pools, missing, nil
}

// apply creates or updates the NAD, or records why it may not.
func (r *Reconciler) apply(ctx context.Context, nw *berthv1.Network, want *nadv1.NetworkAttachmentDefinition, out *outcome) error {
	key := client.ObjectKeyFromObject(want)
	have := &nadv1.NetworkAttachmentDefinition{}
	err := r.client.Get(ctx, key, have)
	if apierrors.IsNotFound(err) {
		if err := controllerutil.SetControllerReference(nw, want, r.client.Scheme()); err != nil {
			return fmt.Errorf("setting the owner of NetworkAttachmentDefinition %s: %w", key, err)
		}
		if err := r.client.Create(ctx, want); err != nil {
			if apierrors.IsAlreadyExists(err) {
				out.after = time.Second // the cache has not seen it yet
				return nil
			}
			return fmt.Errorf("creating NetworkAttachmentDefinition %s: %w", key, err)
		}
		r.events.Eventf(nw, want, corev1.EventTypeNormal, "Created", "CreateNAD", "created NetworkAttachmentDefinition %s", key)
		out.set(ConditionNADReady, true, "Rendered", "")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading NetworkAttachmentDefinition %s: %w", key, err)
	}
	if have.DeletionTimestamp != nil {
		out.fail("NADTerminating", fmt.Sprintf("NetworkAttachmentDefinition %s is being deleted; it is recreated once gone", key))
		out.after = 2 * time.Second
		return nil
	}
	adopting := false
	switch ref := metav1.GetControllerOf(have); {
	case ref != nil && ref.UID == nw.UID:
	// Generated for this Network, then stripped of its owner reference by
	// hand: the label says whose it is.
	case ref == nil && have.Labels[network.LabelNetwork] == nw.Name:
	case ref != nil:
		out.fail("NADOwnedElsewhere", fmt.Sprintf("NetworkAttachmentDefinition %s is controlled by %s %q; Berth leaves it alone", key, ref.Kind, ref.Name))
		return nil
	case !network.AdoptsNAD(nw):
		out.fail("NADExists", fmt.Sprintf("NetworkAttachmentDefinition %s exists and Berth does not manage it; annotate the Network with %s: \"true\" to take it over, or pick another name with %s",
			key, network.AnnotationAdoptNAD, network.AnnotationNADName))
		return nil
	default:
		adopting = true
	}

	next := have.DeepCopy()
	next.Spec.Config = want.Spec.Config
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	next.Labels[network.LabelNetwork] = nw.Name
	if rn, ok := want.Annotations[nadv1.ResourceNameAnnotation]; ok {
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[nadv1.ResourceNameAnnotation] = rn
	} else {
		// A resourceName left over (from an SR-IOV past, or a hand edit)
		// would make the webhook ask for devices this network does not use.
		delete(next.Annotations, nadv1.ResourceNameAnnotation)
	}
	if err := controllerutil.SetControllerReference(nw, next, r.client.Scheme()); err != nil {
		return fmt.Errorf("setting the owner of NetworkAttachmentDefinition %s: %w", key, err)
	}
	reason := "Rendered"
	if adopting {
		reason = "Adopted"
	}
	out.set(ConditionNADReady, true, reason, "")
	if equality.Semantic.DeepEqual(have, next) {
		return nil
	}
	if err := r.client.Update(ctx, next); err != nil {
		if apierrors.IsConflict(err) {
			out.after = time.Second
			return nil
		}
		return fmt.Errorf("updating NetworkAttachmentDefinition %s: %w", key, err)
	}
	r.events.Eventf(nw, next, corev1.EventTypeNormal, reason, "UpdateNAD", "wrote NetworkAttachmentDefinition %s", key)
	return nil
}

// deleteStale removes NADs this Network controls under another name (the
// nad-name annotation changed).
func (r *Reconciler) deleteStale(ctx context.Context, nw *berthv1.Network, keep string) error {
	var list nadv1.NetworkAttachmentDefinitionList
	if err := r.client.List(ctx, &list, client.InNamespace(nw.Namespace), client.MatchingFields{indexController: nw.Name}); err != nil {
		return fmt.Errorf("listing NetworkAttachmentDefinitions of network %s/%s: %w", nw.Namespace, nw.Name, err)
	}
	for i := range list.Items {
		nad := &list.Items[i]
		if nad.Name == keep || controllerNetwork(nad).UID != nw.UID {
			continue
		}
		err := r.client.Delete(ctx, nad, client.Preconditions{UID: &nad.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting NetworkAttachmentDefinition %s/%s, no longer the network's: %w", nad.Namespace, nad.Name, err)
		}
		r.events.Eventf(nw, nad, corev1.EventTypeNormal, "Deleted", "DeleteNAD", "deleted NetworkAttachmentDefinition %s/%s: the network now generates %q", nad.Namespace, nad.Name, keep)
	}
	return nil
}

func (r *Reconciler) writeStatus(ctx context.Context, nw *berthv1.Network, out *outcome) error {
	next := nw.DeepCopy()
	next.Status.Phase = out.phase
	next.Status.NADName = out.nadName
	next.Status.Message = out.message
	next.Status.ObservedGeneration = nw.Generation
	for _, c := range out.conds {
		c.ObservedGeneration = nw.Generation
		meta.SetStatusCondition(&next.Status.Conditions, c)
	}
	if equality.Semantic.DeepEqual(nw.Status, next.Status) {
		return nil
	}
	if nw.Status.Phase != next.Status.Phase && next.Status.Phase == berthv1.NetworkFailed {
		r.events.Eventf(nw, nil, corev1.EventTypeWarning, "Failed", "Reconcile", "%s", out.message)
	}
	if err := r.client.Status().Patch(ctx, next, client.MergeFrom(nw)); err != nil {
		return fmt.Errorf("writing the status of network %s/%s: %w", nw.Namespace, nw.Name, err)
	}
	return nil
}
