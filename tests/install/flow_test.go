package install

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// checkInstalled exercises an installed berth-controller through the API
// server only, as a user would, and checks what each part of Berth needs
// from the shipped RBAC and Service: the self-managed CA and caBundle, the
// Coordinator it creates, the Network and pool controllers, the validating
// webhooks, the pod webhook with its reservations, and the release, also
// of a pod deleted while no replica ran. Names of cluster-scoped objects
// start with prefix.
func checkInstalled(t *testing.T, r *running, prefix string) {
	t.Helper()
	ctx := ctxFor(t, 3*time.Minute)
	c := cp.Client

	// Self-managed certificates: the CA in its Secret, caBundle in every
	// webhook of both configurations.
	if flag(r.args, "--cert-source") != "files" {
		var secret corev1.Secret
		name := flag(r.args, "--cert-secret")
		poll(t, time.Minute, "the CA Secret "+name, func(ctx context.Context) (bool, error) {
			return c.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: name}, &secret) == nil, nil
		})
	}
	cfgName := flag(r.args, "--webhook-configuration")
	poll(t, time.Minute, "caBundle in the webhook configurations "+cfgName, func(ctx context.Context) (bool, error) {
		var mut admissionregistrationv1.MutatingWebhookConfiguration
		var val admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: cfgName}, &mut); err != nil {
			return false, err
		}
		if err := c.Get(ctx, client.ObjectKey{Name: cfgName}, &val); err != nil {
			return false, err
		}
		for _, w := range mut.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		for _, w := range val.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return len(mut.Webhooks) > 0 && len(val.Webhooks) > 0, nil
	})

	// berth-controller makes the Coordinator "default" (podCIDRType auto)
	// and finds the cluster's CIDRs in kubeadm's ConfigMap in kube-system.
	kubeadm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n" +
			"networking:\n  podSubnet: " + cp.ClusterCIDR + "\n  serviceSubnet: " + cp.ServiceCIDR + "\n"},
	}
	if err := c.Create(ctx, kubeadm); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), kubeadm) })
	coord := &berthv1.Coordinator{}
	poll(t, time.Minute, "the Coordinator default Synced from kubeadm-config", func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Name: "default"}, coord)
		return err == nil && coord.Status.Phase == berthv1.CoordinatorSynced &&
			slices.Equal(coord.Status.PodCIDRs, []string{cp.ClusterCIDR}) && slices.Equal(coord.Status.ServiceCIDRs, []string{cp.ServiceCIDR}), client.IgnoreNotFound(err)
	})

	ns := prefix + "-tenant"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-v4"}, Spec: berthv1.IPPoolSpec{
		Subnet: "10.30.0.0/24", IPs: []string{"10.30.0.10-10.30.0.19"}, Gateway: ptr.To("10.30.0.1"), Networks: []string{ns + "/storage"},
	}}
	network := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "storage"}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeMacvlan,
		Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
		IPPools: &berthv1.PoolSelection{IPv4: []string{pool.Name}},
	}}
	for _, o := range []client.Object{pool, network} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
	t.Cleanup(func() {
		// While berth-controller still runs: it holds the pool's finalizer.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0))
		_ = c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		_ = c.Delete(ctx, pool)
		for ctx.Err() == nil && !apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(pool), &berthv1.IPPool{})) {
			time.Sleep(200 * time.Millisecond)
		}
	})

	// The Network controller writes the NetworkAttachmentDefinition.
	poll(t, time.Minute, "the NetworkAttachmentDefinition "+ns+"/storage", func(ctx context.Context) (bool, error) {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "storage"}, &nadv1.NetworkAttachmentDefinition{}) == nil, nil
	})
	// The pool controller keeps the status and holds the finalizer.
	poll(t, time.Minute, "the status of IPPool "+pool.Name, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(pool), pool)
		return err == nil && pool.Status.TotalIPCount == 10 && len(pool.Finalizers) > 0, err
	})

	// The API server reaches the validating webhook through the Service.
	overlapping := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-overlap"}, Spec: berthv1.IPPoolSpec{
		Subnet: "10.30.0.0/24", IPs: []string{"10.30.0.15-10.30.0.25"}, Networks: []string{ns + "/storage"},
	}}
	if err := c.Create(ctx, overlapping); err == nil || !strings.Contains(err.Error(), "also handed out by ippool") {
		t.Fatalf("an overlapping pool: %v; want the webhook's denial", err)
	}

	// The pod webhook reserves an address; the controller binds it.
	pod, allocName := admitted(t, ns, "app", pool.Name)

	// The lock of an address in use cannot be deleted by hand.
	inUse := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: allocName}}
	if err := c.Delete(ctx, inUse); err == nil || !strings.Contains(err.Error(), "is in use by pod "+ns+"/app") {
		t.Fatalf("deleting the IPAllocation of a running pod by hand: %v; want the webhook's denial", err)
	}

	// Only Berth may change what it wrote.
	forged := pod.DeepCopy()
	forged.Annotations[assignment.Annotation] = `{"interfaces":[]}`
	if err := c.Update(ctx, forged); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("an update of %s by the admin: %v; want the webhook's denial", assignment.Annotation, err)
	}

	// Deleting the pod releases its address.
	if err := c.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitReleased(t, allocName)

	// An outage of every replica: pods that need an address are refused
	// (failurePolicy Fail: no pod without its address), and a pod deleted
	// meanwhile keeps its address until a replica is back, which releases it.
	pod, allocName = admitted(t, ns, "outage", pool.Name)
	r.stop()
	refused := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refused", Annotations: map[string]string{nadv1.NetworksAnnotation: "storage"}}, Spec: pod.Spec}
	if err := c.Create(ctx, refused); err == nil || !strings.Contains(err.Error(), `failed calling webhook "pods.berth.io"`) {
		t.Fatalf("a pod created while berth-controller is down: %v; want the API server's webhook failure", err)
	}
	if err := c.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: allocName}, &berthv1.IPAllocation{}); err != nil {
		t.Fatalf("IPAllocation %s with berth-controller down: %v; want it kept until a replica is back", allocName, err)
	}
	r.start(t)
	waitReleased(t, allocName)

	if lines := r.forbidden(); len(lines) > 0 {
		t.Errorf("the API server refused the installed berth-controller (shipped RBAC too narrow):\n%s", strings.Join(lines, "\n"))
	}
}

// flag returns the value of the last --name=value in args.
func flag(args []string, name string) string {
	v := ""
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, name+"="); ok {
			v = rest
		}
	}
	return v
}

// admitted creates a pod on Network "storage" of ns and returns it with the
// name of the IPAllocation of its one address, once that is bound to it.
func admitted(t *testing.T, ns, name, pool string) (*corev1.Pod, string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{nadv1.NetworksAnnotation: "storage"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}, TerminationGracePeriodSeconds: ptr.To[int64](0)},
	}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod %s on the Network: %v", name, err)
	}
	a, err := assignment.Parse(pod.Annotations[assignment.Annotation])
	if err != nil {
		t.Fatalf("the admitted pod %s: %v (annotations %v)", name, err, pod.Annotations)
	}
	itf, ok := a.Lookup("net1")
	if !ok || len(itf.Addresses) != 1 || itf.Addresses[0].Pool != pool {
		t.Fatalf("the admitted pod %s's assignment: %+v", name, a)
	}
	ip := netip.MustParsePrefix(itf.Addresses[0].Address).Addr()
	if ip.Less(netip.MustParseAddr("10.30.0.10")) || netip.MustParseAddr("10.30.0.19").Less(ip) {
		t.Fatalf("pod %s: address %s is outside the pool's range", name, ip)
	}
	allocName := berthv1.AllocationName(pool, ip)
	alloc := &berthv1.IPAllocation{}
	poll(t, time.Minute, "the IPAllocation "+allocName+" bound to pod "+name, func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: allocName}, alloc)
		return err == nil && alloc.Spec.PodRef != nil && alloc.Spec.PodRef.UID == pod.UID, client.IgnoreNotFound(err)
	})
	return pod, allocName
}

// waitReleased waits for the IPAllocation to be deleted.
func waitReleased(t *testing.T, allocName string) {
	t.Helper()
	poll(t, time.Minute, "the release of "+allocName, func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: allocName}, &berthv1.IPAllocation{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}
