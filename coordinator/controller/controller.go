// Package controller keeps the Coordinator's status true to the cluster: it
// watches every place the pod and service CIDRs can come from (kubeadm's and
// Cilium's ConfigMaps, the control-plane pods, Calico's IP pools once their
// CRD exists, ServiceCIDR objects), runs coordinator/detect on a snapshot and
// writes the result, Synced or NotReady with the reason.
package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/coordinator/detect"
)

// RBAC of the controller, for the manifests.
// +kubebuilder:rbac:groups=berth.io,resources=coordinators,verbs=get;list;watch
// +kubebuilder:rbac:groups=berth.io,resources=coordinators/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps;pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=crd.projectcalico.org,resources=ippools,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=servicecidrs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Name of the controller, of its events' reporter, and its condition type.
const (
	Name          = "berth-coordinator"
	ConditionType = "Ready"
)

const kubeSystem = "kube-system"

// Options tune the controller; the zero value is the usual cluster.
type Options struct {
	// CiliumConfigMap is Cilium's ConfigMap; zero means
	// kube-system/cilium-config.
	CiliumConfigMap types.NamespacedName
	// NotReadyRetry is how soon a NotReady Coordinator is examined again
	// without an event (a CRD that is created but not yet served, say);
	// zero means 30 seconds.
	NotReadyRetry time.Duration
}

// Reconciler computes the Coordinator's status.
type Reconciler struct {
	client  client.Client
	sources cache.Cache // kube-system ConfigMaps and control-plane pods, CRDs, ServiceCIDRs, Calico pools
	events  events.EventRecorder
	opts    Options

	serviceCIDRsServed bool

	mu         sync.Mutex
	ctrl       controller.Controller
	calicoOn   bool // a watch on Calico pools is running
	calicoPool *unstructured.Unstructured
}

// SetupWithManager builds the controller and its own cache of the sources,
// and adds both to mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.CiliumConfigMap.Name == "" {
		opts.CiliumConfigMap = types.NamespacedName{Namespace: kubeSystem, Name: "cilium-config"}
	}
	if opts.NotReadyRetry == 0 {
		opts.NotReadyRetry = 30 * time.Second
	}
	served, err := servesServiceCIDRs(mgr)
	if err != nil {
		return err
	}
	sources, err := newSourceCache(mgr, opts)
	if err != nil {
		return err
	}
	if err := mgr.Add(sources); err != nil {
		return fmt.Errorf("adding the coordinator's source cache: %w", err)
	}
	pool := &unstructured.Unstructured{}
	pool.SetGroupVersionKind(detect.CalicoIPPool())
	r := &Reconciler{
		client: mgr.GetClient(), sources: sources, events: mgr.GetEventRecorder(Name), opts: opts,
		serviceCIDRsServed: served, calicoPool: pool,
	}

	toDefault := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: coordinator.Name}}}
	})
	relevantConfigMap := predicate.NewPredicateFuncs(func(o client.Object) bool {
		key := client.ObjectKeyFromObject(o)
		return key.String() == detect.KubeadmConfig || key == opts.CiliumConfigMap
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&berthv1.Coordinator{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Kind(sources, client.Object(&corev1.ConfigMap{}), toDefault, relevantConfigMap)).
		WatchesRawSource(source.Kind(sources, client.Object(&corev1.Pod{}), toDefault)).
		WatchesRawSource(source.Kind(sources, client.Object(crdMeta()), toDefault))
	if served {
		b = b.WatchesRawSource(source.Kind(sources, client.Object(&networkingv1.ServiceCIDR{}), toDefault))
	}
	c, err := b.Build(r)
	if err != nil {
		return fmt.Errorf("building the coordinator controller: %w", err)
	}
	r.ctrl = c
	return nil
}

// servesServiceCIDRs tells whether the API has ServiceCIDR objects
// (Kubernetes 1.33 and later): older clusters have none to watch.
func servesServiceCIDRs(mgr ctrl.Manager) (bool, error) {
	_, err := mgr.GetRESTMapper().RESTMapping(schema.GroupKind{Group: networkingv1.GroupName, Kind: "ServiceCIDR"}, "v1")
	switch {
	case meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("asking the API server whether it serves ServiceCIDRs: %w", err)
	}
	return true, nil
}

// crdMeta is the metadata of Calico's IPPool CRD, all the controller needs
// to know whether Calico is installed.
func crdMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	return m
}

// newSourceCache caches only what detection reads: ConfigMaps of
// kube-system (and Cilium's namespace), the kube-apiserver and
// kube-controller-manager pods (by kubeadm's "component" label), the
// metadata of one CRD, ServiceCIDRs; Calico pools join when Calico appears.
func newSourceCache(mgr ctrl.Manager, opts Options) (cache.Cache, error) {
	namespaces := map[string]cache.Config{kubeSystem: {}, opts.CiliumConfigMap.Namespace: {}}
	components, err := labels.NewRequirement("component", selection.In, []string{detect.APIServer, detect.ControllerManager})
	if err != nil {
		return nil, fmt.Errorf("building the control-plane pod selector: %w", err)
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(),
		Scheme:     mgr.GetScheme(),
		Mapper:     mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Namespaces: namespaces},
			&corev1.Pod{}:       {Namespaces: map[string]cache.Config{kubeSystem: {}}, Label: labels.NewSelector().Add(*components)},
			crdMeta():           {Field: fields.OneTermEqualSelector("metadata.name", detect.CalicoIPPoolCRD)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the coordinator's source cache: %w", err)
	}
	return c, nil
}

// Reconcile recomputes the status of the Coordinator "default".
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Name != coordinator.Name {
		return reconcile.Result{}, nil
	}
	coord := &berthv1.Coordinator{}
	if err := r.client.Get(ctx, req.NamespacedName, coord); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	cluster, retry, err := r.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	res := detect.Detect(&coord.Spec, cluster)

	next := coord.DeepCopy()
	next.Status.PodCIDRs = res.PodCIDRs
	next.Status.ServiceCIDRs = res.ServiceCIDRs
	next.Status.Reason = res.Message
	next.Status.ObservedGeneration = coord.Generation
	cond := metav1.Condition{Type: ConditionType, Status: metav1.ConditionFalse, Reason: res.Reason, Message: res.Message, ObservedGeneration: coord.Generation}
	next.Status.Phase = berthv1.CoordinatorNotReady
	if res.Ready {
		next.Status.Phase = berthv1.CoordinatorSynced
		cond.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&next.Status.Conditions, cond)
	if !equality.Semantic.DeepEqual(coord.Status, next.Status) {
		// The patch holds only what differs from coord, the cache's copy:
		// if the cache has not seen the last status write, a field equal
		// in coord and next (the phase, say) would be left as that write
		// made it. The resourceVersion makes such a write a conflict, and
		// the retry reads the newer copy.
		if err := r.client.Status().Patch(ctx, next, client.MergeFromWithOptions(coord, client.MergeFromWithOptimisticLock{})); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing the status of Coordinator %q: %w", coord.Name, err)
		}
		log.FromContext(ctx).Info("coordinator status", "phase", next.Status.Phase, "podCIDRs", next.Status.PodCIDRs, "serviceCIDRs", next.Status.ServiceCIDRs, "reason", res.Message)
		if coord.Status.Phase != next.Status.Phase {
			kind := corev1.EventTypeNormal
			if !res.Ready {
				kind = corev1.EventTypeWarning
			}
			r.events.Eventf(next, nil, kind, res.Reason, "Detect", "%s", res.Message)
		}
	}
	if !res.Ready || retry {
		return reconcile.Result{RequeueAfter: r.opts.NotReadyRetry}, nil
	}
	return reconcile.Result{}, nil
}

// snapshot reads the sources from the cache. retry says a source exists
// but cannot be read yet (a CRD not yet served), so the reconcile should be
// repeated even if nothing else changes.
func (r *Reconciler) snapshot(ctx context.Context) (*detect.Cluster, bool, error) {
	c := &detect.Cluster{CiliumConfigName: r.opts.CiliumConfigMap}
	var err error
	if c.KubeadmConfig, err = r.configMap(ctx, detect.KubeadmConfig); err != nil {
		return nil, false, err
	}
	if c.CiliumConfig, err = r.configMap(ctx, r.opts.CiliumConfigMap.String()); err != nil {
		return nil, false, err
	}
	var pods corev1.PodList
	if err := r.sources.List(ctx, &pods, client.InNamespace(kubeSystem)); err != nil {
		return nil, false, fmt.Errorf("listing control-plane pods in %s: %w", kubeSystem, err)
	}
	c.ControlPlanePods = pods.Items
	slices.SortFunc(c.ControlPlanePods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	if r.serviceCIDRsServed {
		var list networkingv1.ServiceCIDRList
		if err := r.sources.List(ctx, &list); err != nil {
			return nil, false, fmt.Errorf("listing ServiceCIDRs: %w", err)
		}
		c.ServiceCIDRs = list.Items
	}
	retry, err := r.calico(ctx, c)
	return c, retry, err
}

func (r *Reconciler) configMap(ctx context.Context, key string) (*corev1.ConfigMap, error) {
	ns, name, _ := strings.Cut(key, "/")
	cm := &corev1.ConfigMap{}
	err := r.sources.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading ConfigMap %s: %w", key, err)
	}
	return cm, nil
}

// calico fills in Calico's pools. Their kind exists only once Calico's CRD
// is installed, so the watch on them starts then (a watch on a kind the API
// does not serve would keep the controller from starting), and stops if
// the CRD goes away.
func (r *Reconciler) calico(ctx context.Context, c *detect.Cluster) (retry bool, err error) {
	crd := crdMeta()
	err = r.sources.Get(ctx, types.NamespacedName{Name: detect.CalicoIPPoolCRD}, crd)
	installed := err == nil && crd.DeletionTimestamp == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("reading CRD %s: %w", detect.CalicoIPPoolCRD, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !installed {
		if r.calicoOn {
			if err := r.sources.RemoveInformer(ctx, r.calicoPool.DeepCopy()); err != nil {
				return false, fmt.Errorf("stopping the watch on Calico IPPools: %w", err)
			}
			r.calicoOn = false
		}
		return false, nil
	}
	if _, err := r.client.RESTMapper().RESTMapping(detect.CalicoIPPool().GroupKind(), detect.CalicoIPPool().Version); err != nil {
		if meta.IsNoMatchError(err) {
			return true, nil // the CRD is there but not served yet
		}
		return false, fmt.Errorf("looking up Calico IPPools: %w", err)
	}
	if !r.calicoOn {
		toDefault := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: coordinator.Name}}}
		})
		if err := r.ctrl.Watch(source.Kind(r.sources, client.Object(r.calicoPool.DeepCopy()), toDefault)); err != nil {
			return false, fmt.Errorf("watching Calico IPPools: %w", err)
		}
		r.calicoOn = true
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(detect.CalicoIPPool().GroupVersion().WithKind("IPPoolList"))
	listCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.sources.List(listCtx, list); err != nil {
		return false, fmt.Errorf("listing Calico IPPools: %w", err)
	}
	c.CalicoInstalled = true
	c.CalicoPools = list.Items
	return false, nil
}
