package e2e

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// A Deployment asking for a network by name in the plain Multus form gets,
// in every pod, distinct addresses from the network's pools, the
// assignment and the enriched annotation; scaled to zero, every address
// returns to the pools.
func TestDeploymentAddressesAndRelease(t *testing.T) {
	start(t)
	ns := namespace(t, "deploy", nil, nil)
	create(t,
		ippool("deploy-v4", "10.20.0.0/16", []string{"10.20.1.10-10.20.1.60"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"deploy/storage"}; s.Gateway = ptr.To("10.20.0.1") }),
		ippool("deploy-v6", "fd00:20::/64", []string{"fd00:20::10-fd00:20::60"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"storage"} }),
	)
	create(t, macvlan(ns, "storage", []string{"deploy-v4"}, []string{"deploy-v6"}))
	waitNAD(t, ns, "storage")
	create(t, deployment(ns, "web", 5, map[string]string{nadv1.NetworksAnnotation: "storage"}))

	sel := map[string]string{"app": "web"}
	list := pods(t, ns, sel, 5)
	seen := map[netip.Addr]string{}
	for i := range list {
		p := &list[i]
		a := assignmentOf(t, p)
		if len(a.Interfaces) != 1 || a.Interfaces[0].Interface != "net1" || a.Interfaces[0].Network != ns+"/storage" {
			t.Fatalf("pod %s: assignment %+v", p.Name, a)
		}
		for fam, pool := range map[int]string{4: "deploy-v4", 6: "deploy-v6"} {
			addr := address(t, a, "net1", fam)
			if addr.Pool != pool {
				t.Errorf("pod %s: IPv%d address from pool %s, want %s", p.Name, fam, addr.Pool, pool)
			}
			ip := netip.MustParsePrefix(addr.Address).Addr()
			if other, dup := seen[ip]; dup {
				t.Errorf("address %s given to %s and %s", ip, other, p.Name)
			}
			seen[ip] = p.Name
		}
		if gw := address(t, a, "net1", 4).Gateway; gw != "10.20.0.1" {
			t.Errorf("pod %s: gateway %q", p.Name, gw)
		}
		var elems []nadv1.NetworkSelectionElement
		if err := json.Unmarshal([]byte(p.Annotations[nadv1.NetworksAnnotation]), &elems); err != nil {
			t.Fatalf("pod %s: networks annotation not enriched JSON: %v", p.Name, err)
		}
		if len(elems) != 1 || elems[0].InterfaceRequest != "net1" || len(elems[0].IPRequest) != 2 || elems[0].Namespace != ns {
			t.Fatalf("pod %s: enriched element %+v", p.Name, elems)
		}
		raw, _ := json.Marshal(elems[0].CNIArgs[assignment.CNIArgsKey])
		itf, err := assignment.ParseInterface(raw)
		if err != nil || itf.Addresses[0] != a.Interfaces[0].Addresses[0] {
			t.Fatalf("pod %s: cni-args assignment %s: %v", p.Name, raw, err)
		}
		if p.Annotations[assignment.PolicyAnnotation] == "" {
			t.Errorf("pod %s: no %s", p.Name, assignment.PolicyAnnotation)
		}
		if p.Spec.NodeName == "" {
			// The scheduler binds asynchronously; the address does not wait.
			t.Logf("pod %s not scheduled yet", p.Name)
		}
	}
	waitAllocations(t, "deploy-v4", 5, time.Minute)
	waitAllocations(t, "deploy-v6", 5, time.Minute)

	// Scale to zero: the ReplicaSet deletes the pods; no kubelet confirms,
	// so the test ends them.
	// The Deployment controller writes its status meanwhile: retry on conflict.
	ctx := ctxFor(t, time.Minute)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep := &appsv1.Deployment{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, dep); err != nil {
			return err
		}
		dep.Spec.Replicas = ptr.To[int32](0)
		return cp.Client.Update(ctx, dep)
	})
	if err != nil {
		t.Fatal(err)
	}
	pods(t, ns, sel, 0)
	forceDelete(t, ns, sel)
	waitAllocations(t, "deploy-v4", 0, time.Minute)
	waitAllocations(t, "deploy-v6", 0, time.Minute)
}

// A StatefulSet pod deleted and recreated gets its address back.
func TestStatefulSetKeepsAddress(t *testing.T) {
	start(t)
	ns := namespace(t, "sts", nil, nil)
	create(t, ippool("sts-v4", "10.21.0.0/24", []string{"10.21.0.10-10.21.0.200"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"sts/db"} }))
	create(t, macvlan(ns, "db", []string{"sts-v4"}, nil))
	waitNAD(t, ns, "db")
	labels := map[string]string{"app": "db"}
	create(t, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Spec: appsv1.StatefulSetSpec{
		Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, PodManagementPolicy: appsv1.ParallelPodManagement,
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{nadv1.NetworksAnnotation: "db"}}, Spec: podSpec()},
	}})
	before := map[string]string{}
	for _, p := range pods(t, ns, labels, 3) {
		before[p.Name] = address(t, assignmentOf(t, &p), "net1", 4).Address
	}
	ctx := ctxFor(t, 2*time.Minute)
	victim := &corev1.Pod{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-1"}, victim); err != nil {
		t.Fatal(err)
	}
	oldUID := victim.UID
	if err := cp.Client.Delete(ctx, victim, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-1"}, victim)
		return err == nil && victim.UID != oldUID && victim.Annotations[assignment.Annotation] != "", nil
	}); err != nil {
		t.Fatalf("db-1 was not recreated: %v", err)
	}
	if got := address(t, assignmentOf(t, victim), "net1", 4).Address; got != before["db-1"] {
		t.Fatalf("db-1 came back with %s, had %s", got, before["db-1"])
	}
	waitAllocations(t, "sts-v4", 3, time.Minute)
}
