package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/controlplane"
)

func resourceQuantity(n int64) *resource.Quantity { return resource.NewQuantity(n, resource.DecimalSI) }

func ctxFor(t *testing.T, d time.Duration) context.Context { return controlplane.Context(t, d) }

// namespace creates a namespace for one test.
func namespace(t *testing.T, name string, labels, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	if err := cp.Client.Create(ctxFor(t, 10*time.Second), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(ctxFor(t, 30*time.Second), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func ippool(name, subnet string, ips []string, edit func(*berthv1.IPPoolSpec)) *berthv1.IPPool {
	p := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet, IPs: ips}}
	if edit != nil {
		edit(&p.Spec)
	}
	return p
}

func macvlan(ns, name string, v4, v6 []string) *berthv1.Network {
	nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeMacvlan,
		Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
	}}
	if len(v4)+len(v6) > 0 {
		nw.Spec.IPPools = &berthv1.PoolSelection{IPv4: v4, IPv6: v6}
	}
	return nw
}

// waitNAD waits for the Network controller's NetworkAttachmentDefinition.
func waitNAD(t *testing.T, ns, name string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	nad := &nadv1.NetworkAttachmentDefinition{}
	if err := poll(ctx, func() (bool, error) {
		return cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, nad) == nil, nil
	}); err != nil {
		t.Fatalf("NetworkAttachmentDefinition %s/%s never appeared: %v", ns, name, err)
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}, TerminationGracePeriodSeconds: ptr.To[int64](0)}
}

func pod(ns, name string, annotations, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations, Labels: labels}, Spec: podSpec()}
}

func deployment(ns, name string, n int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: podSpec()},
	}}
}

// pods waits until exactly n pods match the selector and are not being
// deleted, and returns them.
func pods(t *testing.T, ns string, sel map[string]string, n int) []corev1.Pod {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var list corev1.PodList
	var live []corev1.Pod
	err := poll(ctx, func() (bool, error) {
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels(sel)); err != nil {
			return false, err
		}
		live = slices.DeleteFunc(slices.Clone(list.Items), func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
		return len(live) == n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d pods %v in %s: have %d: %v", n, sel, ns, len(live), err)
	}
	return live
}

// forceDelete deletes pods at once: no kubelet will confirm a graceful end.
func forceDelete(t *testing.T, ns string, sel map[string]string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	var list corev1.PodList
	if err := cp.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels(sel)); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if err := cp.Client.Delete(ctx, &list.Items[i], client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

func assignmentOf(t *testing.T, p *corev1.Pod) *assignment.Assignment {
	t.Helper()
	v, ok := p.Annotations[assignment.Annotation]
	if !ok {
		t.Fatalf("pod %s/%s has no %s annotation: %v", p.Namespace, p.Name, assignment.Annotation, p.Annotations)
	}
	a, err := assignment.Parse(v)
	if err != nil {
		t.Fatalf("pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return a
}

// address returns the address of family 4 or 6 of interface iface.
func address(t *testing.T, a *assignment.Assignment, iface string, family int) assignment.Address {
	t.Helper()
	itf, ok := a.Lookup(iface)
	if !ok {
		t.Fatalf("no interface %s in %+v", iface, a)
	}
	for _, addr := range itf.Addresses {
		p := netip.MustParsePrefix(addr.Address)
		if (family == 4) == p.Addr().Is4() {
			return addr
		}
	}
	t.Fatalf("interface %s has no IPv%d address: %+v", iface, family, itf)
	return assignment.Address{}
}

// allocations lists the IPAllocations of a pool.
func allocations(t *testing.T, pool string) []berthv1.IPAllocation {
	t.Helper()
	var list berthv1.IPAllocationList
	if err := cp.Client.List(ctxFor(t, 10*time.Second), &list, client.MatchingFields{"spec.pool": pool}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func waitAllocations(t *testing.T, pool string, n int, d time.Duration) {
	t.Helper()
	ctx := ctxFor(t, d)
	got := -1
	if err := poll(ctx, func() (bool, error) {
		got = len(allocations(t, pool))
		return got == n, nil
	}); err != nil {
		t.Fatalf("pool %s: %d allocations, want %d: %v", pool, got, n, err)
	}
}

// denied creates obj and expects the webhook to refuse it with a message
// containing want.
func denied(t *testing.T, obj client.Object, want string) {
	t.Helper()
	err := cp.Client.Create(ctxFor(t, 30*time.Second), obj)
	if err == nil {
		t.Fatalf("%s %s was admitted; want a denial containing %q", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("denial:\n %v\nwant it to contain:\n %s", err, want)
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var _ = fmt.Sprint
