package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// An IPAllocation is the lock on an address: a hand that deletes one a pod
// still uses, or one reserved for a pod being admitted, is refused with the
// holder named; its spec is Berth's alone; an allocation nothing holds may
// go, and labels may change.
func TestAllocationsGuardedFromHands(t *testing.T) {
	start(t)
	ns := namespace(t, "guard", nil, nil)
	create(t, ippool("guard-v4", "10.22.0.0/24", []string{"10.22.0.10-10.22.0.50"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"guard/lan"} }))
	create(t, macvlan(ns, "lan", []string{"guard-v4"}, nil))
	waitNAD(t, ns, "lan")
	app := pod(ns, "app", map[string]string{nadv1.NetworksAnnotation: "lan"}, nil)
	create(t, app)
	name := address(t, assignmentOf(t, app), "net1", 4).Allocation
	ctx := ctxFor(t, 2*time.Minute)
	alloc := &berthv1.IPAllocation{}
	if err := poll(ctx, func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, alloc)
		return err == nil && alloc.Spec.Phase == berthv1.AllocationBound && alloc.Spec.PodRef.UID == app.UID, nil
	}); err != nil {
		t.Fatalf("IPAllocation %s never bound to pod guard/app: %v", name, err)
	}

	err := cp.Client.Delete(ctx, alloc)
	if err == nil || !strings.Contains(err.Error(), `ipallocation "`+name+`": `+alloc.Spec.IP+` of pool guard-v4 is in use by pod guard/app; deleting it would let another pod get the same address`) {
		t.Fatalf("deleting the IPAllocation of a running pod: %v", err)
	}
	edited := alloc.DeepCopy()
	edited.Spec.Node = "elsewhere"
	if err := cp.Client.Update(ctx, edited); err == nil || !strings.Contains(err.Error(), `ipallocation "`+name+`": spec: written by Berth only`) {
		t.Fatalf("editing the spec of an IPAllocation: %v", err)
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, alloc); err != nil {
			return err
		}
		alloc.Labels = map[string]string{"audit": "2026"}
		return cp.Client.Update(ctx, alloc)
	}); err != nil {
		t.Errorf("labelling an IPAllocation: %v", err)
	}

	// A reservation younger than the TTL may belong to a pod being stored.
	ip := netip.MustParseAddr("10.22.0.49")
	young := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName("guard-v4", ip)}, Spec: berthv1.IPAllocationSpec{
		Pool: "guard-v4", IP: ip.String(), Phase: berthv1.AllocationReserved, PodRef: &berthv1.PodReference{Namespace: ns, GenerateName: "web-"},
	}}
	create(t, young)
	if err := cp.Client.Delete(ctx, young); err == nil || !strings.Contains(err.Error(), "at the admission of pod guard/web-*, which may still be being stored") {
		t.Fatalf("deleting a young reservation: %v", err)
	}

	// Nothing holds an allocation of a pod that is gone: it may go (unless
	// Berth released it first).
	ip = netip.MustParseAddr("10.22.0.48")
	orphan := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName("guard-v4", ip)}, Spec: berthv1.IPAllocationSpec{
		Pool: "guard-v4", IP: ip.String(), Phase: berthv1.AllocationBound, PodRef: &berthv1.PodReference{Namespace: ns, Name: "gone", UID: "0f1e2d3c"},
	}}
	create(t, orphan)
	if err := cp.Client.Delete(ctx, orphan); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting an IPAllocation nothing holds: %v", err)
	}

	// Berth's own release is not in the way.
	if err := cp.Client.Delete(ctx, app, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, &berthv1.IPAllocation{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("IPAllocation %s not released after its pod went: %v", name, err)
	}
}
