package controllers_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/allocator/controllers"
	"github.com/berth-io/berth/api/assignment"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

// The package's tests share one control plane with kube-controller-manager
// (StatefulSets, garbage collection) and kube-scheduler, and one manager
// running the controllers with a short TTL.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(controlplane.Main(m, controlplane.Options{ControllerManager: true, Scheduler: true}, &cp))
}

// testTTL is the reservation TTL of the shared controllers.
const testTTL = 3 * time.Second

// webhookNamespaceLabel marks namespaces whose pods go through the test
// webhook.
const webhookNamespaceLabel = "berth-test/webhook"

type env struct {
	alloc *allocator.Allocator
	// pools maps a namespace to the IPv4 pool its pods get addresses from.
	mu    sync.Mutex
	pools map[string]string
}

var (
	envOnce sync.Once
	envErr  error
	shared  *env
)

// setup starts, once per package, the manager with the controllers and an
// allocator, and a mutating webhook that reserves an address for interface
// net1 of every pod in a labelled namespace: a stand-in for Berth's webhook,
// so pods that kube-controller-manager creates carry real assignments.
func setup(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() { shared, envErr = start() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

func start() (*env, error) {
	ctx := context.Background()
	mgr, err := ctrl.NewManager(cp.Config, manager.Options{
		Scheme:                 cp.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The controllers run on trimmed pods, as a deployment may choose.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: controllers.TrimPod}}},
	})
	if err != nil {
		return nil, err
	}
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{ReservationTTL: testTTL, StatusInterval: 200 * time.Millisecond}); err != nil {
		return nil, err
	}
	a, err := allocator.New(ctx, allocator.Options{
		Informers: mgr.GetCache(),
		Store:     &allocator.APIStore{Writer: mgr.GetClient(), Reader: mgr.GetAPIReader()},
		APIReader: mgr.GetAPIReader(),
	})
	if err != nil {
		return nil, err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped: %v\n", err)
		}
	}()
	e := &env{alloc: a, pools: map[string]string{}}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return a.Ready(), nil }); err != nil {
		return nil, fmt.Errorf("allocator not ready: %w", err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(e.mutate))
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-allocator-test"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "pods.allocator-test.berth.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(srv.URL + "/mutate"), CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{webhookNamespaceLabel: "true"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
	if err := cp.Client.Create(ctx, hook); err != nil {
		return nil, err
	}
	go fakeKubelet(ctx)
	return e, nil
}

// mutate reserves net1's address and writes the assignment, as Berth's
// webhook does (without policies).
func (e *env) mutate(w http.ResponseWriter, r *http.Request) {
	review := &admissionv1.AdmissionReview{}
	if err := json.NewDecoder(r.Body).Decode(review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := review.Request
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	review.Response, review.Request = resp, nil
	defer func() { _ = json.NewEncoder(w).Encode(review) }()
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		resp.Allowed, resp.Result = false, &metav1.Status{Message: err.Error()}
		return
	}
	pod.Namespace = req.Namespace
	e.mu.Lock()
	pool := e.pools[req.Namespace]
	e.mu.Unlock()
	if pool == "" {
		return
	}
	res, err := e.alloc.Reserve(r.Context(), allocator.Request{Pod: pod, AdmissionUID: req.UID, Interface: "net1", Network: req.Namespace + "/net", IPv4Pools: []string{pool}})
	if err != nil {
		resp.Allowed, resp.Result = false, &metav1.Status{Message: err.Error(), Code: http.StatusForbidden}
		return
	}
	value, err := assignmentOf(res)
	if err != nil {
		resp.Allowed, resp.Result = false, &metav1.Status{Message: err.Error()}
		return
	}
	var patch []map[string]any
	if pod.Annotations == nil {
		patch = append(patch, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
	}
	patch = append(patch, map[string]any{"op": "add", "path": "/metadata/annotations/berth.io~1assignment", "value": value})
	resp.Patch, _ = json.Marshal(patch)
	resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
}

func assignmentOf(res []allocator.Reservation) (string, error) {
	itf := assignment.Interface{Interface: "net1", Network: "test/net"}
	for _, r := range res {
		itf.Addresses = append(itf.Addresses, assignment.Address{Address: r.Address.String(), Pool: r.Pool, Allocation: r.Allocation})
	}
	a := &assignment.Assignment{Interfaces: []assignment.Interface{itf}}
	return a.Marshal()
}

// fakeKubelet finishes what a kubelet would: a pod being deleted is gone
// once its containers stop; with no kubelet here it would stay Terminating.
func fakeKubelet(ctx context.Context) {
	for ctx.Err() == nil {
		pods := &corev1.PodList{}
		if err := cp.Client.List(ctx, pods); err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil {
					_ = cp.Client.Delete(ctx, p, client.GracePeriodSeconds(0), client.Preconditions{UID: &p.UID})
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// namespace creates a namespace whose pods get addresses from a new pool.
func (e *env) namespace(t *testing.T, name, subnet string) {
	t.Helper()
	ctx := controlplane.Context(t, 30*time.Second)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{webhookNamespaceLabel: "true"}}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet}}
	if err := cp.Client.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.pools[name] = name
	e.mu.Unlock()
}

var (
	repeatsMu sync.Mutex
	repeats   = map[string]int{}
)

// repeat returns a suffix that makes a test's object names unique for each
// time it runs in one process (go test -count): namespaces take a while to
// go, so names are not reused.
func repeat(t *testing.T) string {
	repeatsMu.Lock()
	defer repeatsMu.Unlock()
	repeats[t.Name()]++
	if n := repeats[t.Name()]; n > 1 {
		return fmt.Sprintf("-r%d", n)
	}
	return ""
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	}
}

func getAllocation(ctx context.Context, name string) (*berthv1.IPAllocation, error) {
	obj := &berthv1.IPAllocation{}
	err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, obj)
	return obj, err
}

func testPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}},
	}
}

// podAssignment returns the allocation names of a stored pod.
func podAssignment(t *testing.T, pod *corev1.Pod) []string {
	t.Helper()
	a, err := assignment.Parse(pod.Annotations[assignment.Annotation])
	if err != nil {
		t.Fatalf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	var names []string
	for _, itf := range a.Interfaces {
		for _, addr := range itf.Addresses {
			names = append(names, addr.Allocation)
		}
	}
	return names
}
