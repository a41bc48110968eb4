package controller

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/coordinator/detect"
	"github.com/berth-io/berth/tests/controlplane"
)

// One API server for the package. The tests share cluster-wide objects
// (kube-system, the Coordinator singleton, Calico's CRD), so none runs in
// parallel and each removes what it made.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// The controllers log through controller-runtime's root logger; the
	// tests judge by the objects, not the log.
	ctrl.SetLogger(logr.Discard())
	os.Exit(controlplane.Main(m, controlplane.Options{}, &cp))
}

// startController runs the coordinator controller in a manager of its own
// for the duration of the test.
func startController(t *testing.T) {
	t.Helper()
	mgr := newManager(t, ctrl.Options{})
	if err := SetupWithManager(mgr, Options{NotReadyRetry: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	run(t, mgr)
}

// newManager builds a manager on the test API server; opts adds to the
// settings every test needs.
func newManager(t *testing.T, opts ctrl.Options) ctrl.Manager {
	t.Helper()
	// The scheme berth-controller has: no apiextensions types, which the
	// metadata-only watch on Calico's CRD must not need.
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, berthv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	opts.Scheme = scheme
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	// Each test runs the controller anew; controller-runtime otherwise
	// refuses a second controller of the same name in one process.
	opts.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := ctrl.NewManager(cp.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// run starts mgr and stops it when the test ends.
func run(t *testing.T, mgr ctrl.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

func createCoordinator(t *testing.T, spec berthv1.CoordinatorSpec) {
	t.Helper()
	c := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: coordinator.Name}, Spec: spec}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, c) })
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteAndWait(t, obj) })
}

// deleteAndWait deletes obj at once and waits until it is gone, so the next
// test starts from a clean cluster.
func deleteAndWait(t *testing.T, obj client.Object) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cp.Client.Delete(ctx, obj, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
		return
	}
	for {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return
		}
		if ctx.Err() != nil {
			t.Errorf("%T %s was not deleted", obj, obj.GetName())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls the Coordinator until ok accepts it.
func waitFor(t *testing.T, what string, ok func(*berthv1.Coordinator) bool) *berthv1.Coordinator {
	t.Helper()
	ctx := controlplane.Context(t, 45*time.Second)
	c := &berthv1.Coordinator{}
	for {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, c)
		if err == nil && ok(c) {
			return c
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s; last status: %+v (err %v)", what, c.Status, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func synced(pods ...string) func(*berthv1.Coordinator) bool {
	return func(c *berthv1.Coordinator) bool {
		return c.Status.Phase == berthv1.CoordinatorSynced && slices.Equal(c.Status.PodCIDRs, pods)
	}
}

func notReady(reason string) func(*berthv1.Coordinator) bool {
	return func(c *berthv1.Coordinator) bool {
		return c.Status.Phase == berthv1.CoordinatorNotReady && strings.Contains(c.Status.Reason, reason)
	}
}

func kubeadmConfig(pod, svc string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n" +
			"  dnsDomain: cluster.local\n  podSubnet: " + pod + "\n  serviceSubnet: " + svc + "\n"},
	}
}

// TestNotReadyWithoutSources: with no source of pod CIDRs the Coordinator
// is NotReady, the reason lists what was looked for, and the check the
// webhook calls refuses with that reason. Service CIDRs still come from the
// API server's own ServiceCIDR object.
func TestNotReadyWithoutSources(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRAuto})
	c := waitFor(t, "NotReady", notReady("podCIDRType auto: no pod CIDRs"))
	for _, want := range []string{"ippools.crd.projectcalico.org", "kube-system/cilium-config not found", "kube-system/kubeadm-config not found", "--cluster-cidr"} {
		if !strings.Contains(c.Status.Reason, want) {
			t.Errorf("reason %q does not mention %q", c.Status.Reason, want)
		}
	}
	if !slices.Contains(c.Status.ServiceCIDRs, cp.ServiceCIDR) {
		t.Errorf("service CIDRs %v lack the API server's %s", c.Status.ServiceCIDRs, cp.ServiceCIDR)
	}
	cond := meta.FindStatusCondition(c.Status.Conditions, ConditionType)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != detect.ReasonSourceNotFound {
		t.Errorf("condition %+v", cond)
	}
	err := coordinator.CheckReady(controlplane.Context(t, 10*time.Second), cp.Client)
	if err == nil || !strings.Contains(err.Error(), "podCIDRType auto: no pod CIDRs") {
		t.Errorf("CheckReady: %v", err)
	}
}

// TestKubeadmConfig: the CIDRs follow kube-system/kubeadm-config as it is
// created, changed and deleted.
func TestKubeadmConfig(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRCluster})
	waitFor(t, "NotReady", notReady("kube-system/kubeadm-config not found"))

	cm := kubeadmConfig("10.244.0.0/16,fd00:10:244::/56", "10.96.0.0/12,fd00:10:96::/112")
	create(t, cm)
	c := waitFor(t, "Synced from kubeadm-config", synced("10.244.0.0/16", "fd00:10:244::/56"))
	if !strings.Contains(c.Status.Reason, "pod CIDRs from ConfigMap kube-system/kubeadm-config (networking.podSubnet)") {
		t.Errorf("reason %q", c.Status.Reason)
	}
	if err := coordinator.CheckReady(controlplane.Context(t, 10*time.Second), cp.Client); err != nil {
		t.Errorf("CheckReady: %v", err)
	}

	cm.Data = kubeadmConfig("10.245.0.0/16", "10.96.0.0/12").Data
	if err := cp.Client.Update(controlplane.Context(t, 10*time.Second), cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed podSubnet", synced("10.245.0.0/16"))

	deleteAndWait(t, cm)
	waitFor(t, "NotReady again", notReady("kube-system/kubeadm-config not found"))
}

func staticPod(name, component string, labelled bool, command ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: component, Image: "registry.k8s.io/" + component + ":v1.37.2", Command: command}}},
	}
	if labelled {
		p.Labels = map[string]string{"component": component, "tier": "control-plane"}
	}
	return p
}

// TestPodFlags: without kubeadm-config the CIDRs come from the flags of the
// control-plane pods kubeadm labels; other pods do not count.
func TestPodFlags(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRCluster, ServiceCIDRs: []string{"10.250.0.0/16"}})
	create(t, staticPod("impostor", "kube-controller-manager", false, "kube-controller-manager", "--cluster-cidr=10.1.0.0/16"))
	waitFor(t, "NotReady", notReady("no kube-controller-manager pod in kube-system sets --cluster-cidr"))

	create(t, staticPod("kube-controller-manager-cp1", "kube-controller-manager", true,
		"kube-controller-manager", "--allocate-node-cidrs=true", "--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56", "--service-cluster-ip-range=10.96.0.0/12"))
	create(t, staticPod("kube-apiserver-cp1", "kube-apiserver", true, "kube-apiserver", "--service-cluster-ip-range=10.96.0.0/12,fd00:10:96::/112"))
	c := waitFor(t, "Synced from pod flags", synced("10.244.0.0/16", "fd00:10:244::/56"))
	if !strings.Contains(c.Status.Reason, "the --cluster-cidr flag of kube-system pod(s) kube-controller-manager-cp1") {
		t.Errorf("reason %q", c.Status.Reason)
	}
	// ServiceCIDR objects (the API server's own) come first; the spec's are added.
	if !slices.Contains(c.Status.ServiceCIDRs, cp.ServiceCIDR) || !slices.Contains(c.Status.ServiceCIDRs, "10.250.0.0/16") {
		t.Errorf("service CIDRs %v", c.Status.ServiceCIDRs)
	}
}

func calicoPool(name, cidr string, disabled bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"cidr": cidr, "disabled": disabled, "ipipMode": "Always"}}}
	u.SetGroupVersionKind(detect.CalicoIPPool())
	u.SetName(name)
	return u
}

// TestCalicoPools: Calico's pools are watched: a third pool shows up in the
// status, a disabled one leaves it, and without the CRD the Coordinator is
// NotReady again.
func TestCalicoPools(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRCalico})
	waitFor(t, "NotReady before Calico", notReady("ippools.crd.projectcalico.org) is not installed"))

	data, err := os.ReadFile("testdata/calico-ippool-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	if err := cp.InstallCRDs(controlplane.Context(t, time.Minute), crd); err != nil {
		t.Fatal(err)
	}
	crdGone := false
	t.Cleanup(func() {
		if !crdGone {
			deleteAndWait(t, crd)
		}
	})
	waitFor(t, "NotReady without pools", notReady("no enabled Calico IPPool for workloads"))

	create(t, calicoPool("default-ipv4-ippool", "192.168.0.0/16", false))
	create(t, calicoPool("default-ipv6-ippool", "fd00:192:168::/48", false))
	c := waitFor(t, "two pools", synced("192.168.0.0/16", "fd00:192:168::/48"))
	if !strings.Contains(c.Status.Reason, "Calico IPPools default-ipv4-ippool, default-ipv6-ippool") {
		t.Errorf("reason %q", c.Status.Reason)
	}

	third := calicoPool("rack2", "10.66.0.0/16", false)
	create(t, third)
	// Pools are taken in name order, whatever order the API lists them in.
	waitFor(t, "the third pool", synced("192.168.0.0/16", "fd00:192:168::/48", "10.66.0.0/16"))

	if err := unstructured.SetNestedField(third.Object, true, "spec", "disabled"); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Update(controlplane.Context(t, 10*time.Second), third); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the disabled pool to leave", synced("192.168.0.0/16", "fd00:192:168::/48"))

	deleteAndWait(t, crd)
	crdGone = true
	waitFor(t, "NotReady after Calico left", notReady("is not installed"))
}

// TestCiliumConfig: Cilium's cluster-pool CIDRs, in their list form.
func TestCiliumConfig(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRCilium})
	waitFor(t, "NotReady", notReady("ConfigMap kube-system/cilium-config not found"))
	create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"},
		Data: map[string]string{
			"ipam": "cluster-pool", "enable-ipv4": "true", "enable-ipv6": "true",
			"cluster-pool-ipv4-cidr": "10.0.0.0/9 10.128.0.0/9", "cluster-pool-ipv4-mask-size": "24",
			"cluster-pool-ipv6-cidr": "fd00:c1::/104", "cluster-pool-ipv6-mask-size": "120",
		},
	})
	c := waitFor(t, "Synced from cilium-config", synced("10.0.0.0/9", "10.128.0.0/9", "fd00:c1::/104"))
	if !strings.Contains(c.Status.Reason, "ConfigMap kube-system/cilium-config (Cilium cluster-pool)") {
		t.Errorf("reason %q", c.Status.Reason)
	}
}

// TestServiceCIDRObjects: a ServiceCIDR added to the cluster at run time
// reaches the status.
func TestServiceCIDRObjects(t *testing.T) {
	startController(t)
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRNone, PodCIDRs: []string{"10.1.0.0/16"}})
	c := waitFor(t, "Synced", synced("10.1.0.0/16"))
	if len(c.Status.ServiceCIDRs) != 0 {
		t.Errorf("podCIDRType none took service CIDRs from the cluster: %v", c.Status.ServiceCIDRs)
	}
	if err := cp.Client.Patch(controlplane.Context(t, 10*time.Second), &berthv1.Coordinator{
		ObjectMeta: metav1.ObjectMeta{Name: coordinator.Name},
		Spec:       berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRCilium},
	}, client.Merge); err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: map[string]string{"cluster-pool-ipv4-cidr": "10.0.0.0/8"}})
	waitFor(t, "the API server's ServiceCIDR", func(c *berthv1.Coordinator) bool {
		return c.Status.Phase == berthv1.CoordinatorSynced && slices.Contains(c.Status.ServiceCIDRs, cp.ServiceCIDR)
	})
	extra := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.100.0.0/16"}}}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), extra); err != nil {
		t.Fatal(err)
	}
	// Without kube-controller-manager nothing removes the ServiceCIDR's
	// finalizer; drop it so the object really goes.
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cp.Client.Delete(ctx, extra)
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(extra), extra); err == nil {
			extra.Finalizers = nil
			_ = cp.Client.Update(ctx, extra)
		}
	})
	c = waitFor(t, "the new ServiceCIDR", func(c *berthv1.Coordinator) bool {
		return slices.Contains(c.Status.ServiceCIDRs, "10.100.0.0/16")
	})
	if !strings.Contains(c.Status.Reason, "service CIDRs from ServiceCIDR objects extra, kubernetes") {
		t.Errorf("reason %q", c.Status.Reason)
	}
}

// staleCoordinator is a client whose reads of the Coordinator return an old
// copy, as a cache does before it has seen the last write.
type staleCoordinator struct {
	client.Client
	stale *berthv1.Coordinator
}

func (c staleCoordinator) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if out, ok := obj.(*berthv1.Coordinator); ok {
		c.stale.DeepCopyInto(out)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestStatusOverStaleCache: a status computed from a cache that has not
// seen the last status write must not be merged into it. A merge patch
// holds only what differs from the stale copy, so a phase equal to the
// stale one would leave the newer, different phase in place (NotReady
// with a Ready condition, for good: status writes bring no reconcile).
// The write must fail instead, and the retry, on a fresh read, succeed.
func TestStatusOverStaleCache(t *testing.T) {
	createCoordinator(t, berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRNone, PodCIDRs: []string{"10.1.0.0/16"}})
	ctx := controlplane.Context(t, 30*time.Second)
	stale := &berthv1.Coordinator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, stale); err != nil {
		t.Fatal(err)
	}
	// What the cache last saw: Synced, from an older spec.
	stale.Status = berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorSynced, Reason: "older", PodCIDRs: []string{"10.9.0.0/16"}}
	// What the API server has now: NotReady, written after.
	now := stale.DeepCopy()
	now.Status = berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorNotReady, Reason: "newer"}
	if err := cp.Client.Status().Update(ctx, now); err != nil {
		t.Fatal(err)
	}

	mgr := newManager(t, ctrl.Options{})
	opts := Options{CiliumConfigMap: types.NamespacedName{Namespace: kubeSystem, Name: "cilium-config"}, NotReadyRetry: time.Second}
	sources, err := newSourceCache(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = sources.Start(cctx) }()
	if !sources.WaitForCacheSync(ctx) {
		t.Fatal("the source cache did not sync")
	}
	r := &Reconciler{client: staleCoordinator{Client: cp.Client, stale: stale}, sources: sources, events: events.NewFakeRecorder(10), opts: opts}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: coordinator.Name}}
	if _, err := r.Reconcile(ctx, req); !apierrors.IsConflict(err) {
		t.Errorf("writing over a stale status: %v, want a conflict", err)
	}
	mixed := &berthv1.Coordinator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, mixed); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(mixed.Status.Conditions, ConditionType); mixed.Status.Phase == berthv1.CoordinatorNotReady && cond != nil && cond.Status == metav1.ConditionTrue {
		t.Errorf("the stale write left phase NotReady with condition Ready True: %+v", mixed.Status)
	}
	r.client = cp.Client
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	got := &berthv1.Coordinator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, got); err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(got.Status.Conditions, ConditionType)
	if got.Status.Phase != berthv1.CoordinatorSynced || cond == nil || cond.Status != metav1.ConditionTrue || !slices.Equal(got.Status.PodCIDRs, []string{"10.1.0.0/16"}) {
		t.Errorf("status %+v", got.Status)
	}
}
