package controller

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	coordctrl "github.com/berth-io/berth/coordinator/controller"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/network/render"
	"github.com/berth-io/berth/tests/controlplane"
)

// One control plane for the package, with kube-controller-manager so that
// deleting a Network garbage-collects its NAD as in a cluster. One
// controller runs for all tests; each test works in its own namespace.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(controlplane.Main(m, controlplane.Options{ControllerManager: true}, &cp) | stop())
}

var stopManager func() error

func stop() int {
	if stopManager != nil && stopManager() != nil {
		return 1
	}
	return 0
}

func startOnce(t *testing.T) {
	t.Helper()
	if stopManager != nil {
		return
	}
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := SetupWithManager(mgr, Options{}); err != nil {
		t.Fatal(err)
	}
	// The real Coordinator controller: CIDR changes travel the whole way,
	// Coordinator spec -> status -> NADs.
	if err := coordctrl.SetupWithManager(mgr, coordctrl.Options{NotReadyRetry: time.Second}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopManager = func() error { cancel(); return <-done }
	// The Coordinator the NADs are rendered from. This control plane has
	// no kubeadm-config, so the CIDRs are given (podCIDRType none).
	coord := &berthv1.Coordinator{
		ObjectMeta: metav1.ObjectMeta{Name: coordinator.Name},
		Spec: berthv1.CoordinatorSpec{PodCIDRType: berthv1.PodCIDRNone, CoordinatorSettings: berthv1.CoordinatorSettings{
			Mode: ptr.To(berthv1.CoordinatorAuto), DetectGateway: ptr.To(true),
		}, PodCIDRs: []string{"10.244.0.0/16"}, ServiceCIDRs: []string{"10.96.0.0/16"}},
	}
	c := controlplane.Context(t, 30*time.Second)
	if err := cp.Client.Create(c, coord); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*berthv1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "ctl-v4"}, Spec: berthv1.IPPoolSpec{Subnet: "10.6.0.0/16", Gateway: ptr.To("10.6.0.1"), Routes: []berthv1.Route{{Dst: "10.7.0.0/16"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ctl-v6"}, Spec: berthv1.IPPoolSpec{Subnet: "fd00:6::/64", Gateway: ptr.To("fd00:6::1")}},
	} {
		if err := cp.Client.Create(c, p); err != nil {
			t.Fatal(err)
		}
	}
}

// setCoordinator changes the Coordinator's spec and waits until its
// controller has synced it (or reported NotReady).
func setCoordinator(t *testing.T, typ berthv1.PodCIDRType, pod, svc []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord := &berthv1.Coordinator{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, coord); err != nil {
			return err
		}
		coord.Spec.PodCIDRType, coord.Spec.PodCIDRs, coord.Spec.ServiceCIDRs = typ, pod, svc
		return cp.Client.Update(ctx, coord)
	})
	if err != nil {
		t.Error(err)
		return
	}
	for coord.Status.ObservedGeneration != coord.Generation {
		if ctx.Err() != nil {
			t.Errorf("the Coordinator controller did not examine generation %d", coord.Generation)
			return
		}
		time.Sleep(50 * time.Millisecond)
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: coordinator.Name}, coord); err != nil {
			t.Error(err)
			return
		}
	}
}

// update changes nw as mutate says, retrying on conflicts with the
// controller's status writes.
func update(t *testing.T, nw *berthv1.Network, mutate func(*berthv1.Network)) {
	t.Helper()
	ctx := controlplane.Context(t, 30*time.Second)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(nw), nw); err != nil {
			return err
		}
		mutate(nw)
		return cp.Client.Update(ctx, nw)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("_", "-", "/", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), ns) })
	return name
}

func macvlanNetwork(ns, name string) *berthv1.Network {
	return &berthv1.Network{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: berthv1.NetworkSpec{
			CNIType: berthv1.CNITypeMacvlan,
			Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 100}, Mode: "bridge"},
			IPPools: &berthv1.PoolSelection{IPv4: []string{"ctl-v4"}, IPv6: []string{"ctl-v6"}},
		},
	}
}

// eventually polls cond every 100ms for up to 30s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	ctx := controlplane.Context(t, 30*time.Second)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s; last: %s", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getNAD(ns, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	nad := &nadv1.NetworkAttachmentDefinition{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, nad)
	return nad, err
}

// expected renders what the NAD of nw must hold, from the objects as the
// API server has them now.
func expected(t *testing.T, nw *berthv1.Network) string {
	t.Helper()
	c := controlplane.Context(t, 10*time.Second)
	if err := cp.Client.Get(c, client.ObjectKeyFromObject(nw), nw); err != nil {
		t.Fatal(err)
	}
	coord, err := coordinator.Get(c, cp.Client)
	if err != nil {
		t.Fatal(err)
	}
	var pools []berthv1.IPPool
	for _, name := range network.Pools(nw) {
		p := berthv1.IPPool{}
		if err := cp.Client.Get(c, client.ObjectKey{Name: name}, &p); err == nil {
			pools = append(pools, p)
		}
	}
	var all berthv1.IPPoolList
	if err := cp.Client.List(c, &all); err != nil {
		t.Fatal(err)
	}
	for _, p := range all.Items {
		if network.ServesNetwork(&p, nw) {
			pools = append(pools, p)
		}
	}
	cfg, err := render.Config(render.Input{Network: nw, Pools: pools, Coordinator: coord})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitNAD waits until the NAD of nw holds exactly what render says and is
// controlled by nw.
func waitNAD(t *testing.T, nw *berthv1.Network, name string) *nadv1.NetworkAttachmentDefinition {
	t.Helper()
	var nad *nadv1.NetworkAttachmentDefinition
	eventually(t, "NAD "+nw.Namespace+"/"+name, func() (bool, string) {
		want := expected(t, nw)
		var err error
		nad, err = getNAD(nw.Namespace, name)
		if err != nil {
			return false, err.Error()
		}
		ref := metav1.GetControllerOf(nad)
		if ref == nil || ref.UID != nw.UID {
			return false, "not controlled by the Network"
		}
		if nad.Spec.Config != want {
			return false, "config:\n" + nad.Spec.Config + "\nwant:\n" + want
		}
		return true, ""
	})
	if _, err := libcni.ConfListFromBytes([]byte(nad.Spec.Config)); err != nil {
		t.Fatalf("libcni does not parse the NAD's config: %v", err)
	}
	return nad
}

func waitStatus(t *testing.T, nw *berthv1.Network, what string, ok func(*berthv1.NetworkStatus) bool) *berthv1.Network {
	t.Helper()
	got := &berthv1.Network{}
	eventually(t, what, func() (bool, string) {
		if err := cp.Client.Get(context.Background(), client.ObjectKeyFromObject(nw), got); err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(got.Status)
		return ok(&got.Status), string(b)
	})
	return got
}

// TestEveryCNITypeGetsItsNAD: each cniType ends in a NAD whose config is
// what render produces (pinned by render's golden files), parses with
// libcni, and carries the resourceName annotation where devices are needed.
func TestEveryCNITypeGetsItsNAD(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	specs := map[string]berthv1.NetworkSpec{
		"macvlan": macvlanNetwork(ns, "x").Spec,
		"ipvlan":  {CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth2"}}, Mode: "l3"}},
		"sriov": {CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice", VLANID: 200},
			IPPools: &berthv1.PoolSelection{IPv4: []string{"ctl-v4"}}},
		"ovs":         {CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{Bridge: "br-phys", VLAN: 10}},
		"bridge":      {CNIType: berthv1.CNITypeBridge, Bridge: &berthv1.BridgeConfig{Bridge: "br0", IsGateway: true}},
		"host-device": {CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{PCIAddress: "0000:3b:00.1"}},
		"custom":      {CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: `{"type":"vlan","master":"eth0","vlanId":5}`}},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), nw); err != nil {
				t.Fatal(err)
			}
			nad := waitNAD(t, nw, name)
			if nad.Labels[network.LabelNetwork] != name {
				t.Errorf("labels %v", nad.Labels)
			}
			wantRN := ""
			if name == "sriov" {
				wantRN = "berth.io/sriov_netdevice"
			}
			if got := nad.Annotations[nadv1.ResourceNameAnnotation]; got != wantRN {
				t.Errorf("resourceName annotation %q, want %q", got, wantRN)
			}
			st := waitStatus(t, nw, "Ready", func(s *berthv1.NetworkStatus) bool {
				return s.Phase == berthv1.NetworkReady && s.NADName == name && meta.IsStatusConditionTrue(s.Conditions, ConditionNADReady)
			})
			if st.Status.ObservedGeneration != st.Generation {
				t.Errorf("observedGeneration %d, generation %d", st.Status.ObservedGeneration, st.Generation)
			}
		})
	}
}

// TestNADIsGuarded: deleted -> recreated; edited by hand -> restored, the
// owner reference and a stray resourceName annotation included; a label the
// user added is kept.
func TestNADIsGuarded(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	nw := macvlanNetwork(ns, "guarded")
	c := controlplane.Context(t, time.Minute)
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	nad := waitNAD(t, nw, "guarded")
	oldUID := nad.UID

	if err := cp.Client.Delete(c, nad); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the NAD to come back", func() (bool, string) {
		got, err := getNAD(ns, "guarded")
		return err == nil && got.UID != oldUID, "not recreated"
	})
	nad = waitNAD(t, nw, "guarded")

	nad.Spec.Config = `{"cniVersion":"1.0.0","name":"guarded","plugins":[{"type":"macvlan","master":"eth9"}]}`
	nad.Annotations = map[string]string{nadv1.ResourceNameAnnotation: "vendor/nic", "note": "mine"}
	nad.Labels["team"] = "a"
	nad.OwnerReferences = nil
	if err := cp.Client.Update(c, nad); err != nil {
		t.Fatal(err)
	}
	nad = waitNAD(t, nw, "guarded")
	eventually(t, "the stray resourceName annotation to go", func() (bool, string) {
		got, err := getNAD(ns, "guarded")
		if err != nil {
			return false, err.Error()
		}
		_, stray := got.Annotations[nadv1.ResourceNameAnnotation]
		return !stray && got.Annotations["note"] == "mine" && got.Labels["team"] == "a", "annotations " + strings.Join(mapKeys(got.Annotations), ",")
	})
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// TestCoordinatorAndPoolChangesReachNADs: new cluster CIDRs and a changed
// pool are rendered into the NADs; a pool that lists the Network joins its
// pool data.
func TestCoordinatorAndPoolChangesReachNADs(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	nw := macvlanNetwork(ns, "follows")
	c := controlplane.Context(t, time.Minute)
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	waitNAD(t, nw, "follows")

	setCoordinator(t, berthv1.PodCIDRNone, []string{"10.244.0.0/16", "10.245.0.0/16"}, []string{"10.96.0.0/16"})
	t.Cleanup(func() { setCoordinator(t, berthv1.PodCIDRNone, []string{"10.244.0.0/16"}, []string{"10.96.0.0/16"}) })
	nad := waitNAD(t, nw, "follows")
	if !strings.Contains(nad.Spec.Config, "10.245.0.0/16") {
		t.Errorf("the new pod CIDR is not in the NAD:\n%s", nad.Spec.Config)
	}

	extra := &berthv1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "ctl-serves-follows"},
		Spec:       berthv1.IPPoolSpec{Subnet: "10.9.0.0/24", Gateway: ptr.To("10.9.0.1"), Networks: []string{ns + "/follows"}},
	}
	if err := cp.Client.Create(c, extra); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), extra) })
	nad = waitNAD(t, nw, "follows")
	if !strings.Contains(nad.Spec.Config, `"name": "ctl-serves-follows"`) {
		t.Errorf("the pool serving the network is not in its pool data:\n%s", nad.Spec.Config)
	}

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(c, client.ObjectKeyFromObject(extra), extra); err != nil {
			return err
		}
		extra.Spec.Gateway = ptr.To("10.9.0.254")
		return cp.Client.Update(c, extra)
	})
	if err != nil {
		t.Fatal(err)
	}
	nad = waitNAD(t, nw, "follows")
	if !strings.Contains(nad.Spec.Config, `"gateway": "10.9.0.254"`) {
		t.Errorf("the changed gateway is not in the NAD:\n%s", nad.Spec.Config)
	}
}

// TestPoolNamingTheNADJoinsItsPoolData: pods name a Network by its NAD
// (berth.io/nad-name), so a pool whose spec.networks names the NAD, as
// namespace/name or by the bare name, serves the Network: its data is in
// the NAD's berth-ipam pool data (berth-ipam needs it for addresses that
// arrive through the "ips" capability), from the moment the pool appears.
func TestPoolNamingTheNADJoinsItsPoolData(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	c := controlplane.Context(t, time.Minute)
	nw := macvlanNetwork(ns, "blue")
	nw.Annotations = map[string]string{network.AnnotationNADName: "blue-nad"}
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	waitNAD(t, nw, "blue-nad")
	for _, p := range []*berthv1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "ctl-nad-qualified"}, Spec: berthv1.IPPoolSpec{Subnet: "10.19.1.0/24", Networks: []string{ns + "/blue-nad"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ctl-nad-bare"}, Spec: berthv1.IPPoolSpec{Subnet: "10.19.2.0/24", Networks: []string{"blue-nad"}}},
		// Another namespace's NAD of that name is another network.
		{ObjectMeta: metav1.ObjectMeta{Name: "ctl-nad-elsewhere"}, Spec: berthv1.IPPoolSpec{Subnet: "10.19.3.0/24", Networks: []string{"other/blue-nad"}}},
	} {
		if err := cp.Client.Create(c, p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), p) })
	}
	nad := waitNAD(t, nw, "blue-nad")
	for _, name := range []string{"ctl-nad-qualified", "ctl-nad-bare"} {
		if !strings.Contains(nad.Spec.Config, `"name": "`+name+`"`) {
			t.Errorf("pool %s names the NAD but is not in its pool data:\n%s", name, nad.Spec.Config)
		}
	}
	if strings.Contains(nad.Spec.Config, "ctl-nad-elsewhere") {
		t.Errorf("a pool of another namespace's blue-nad is in the pool data:\n%s", nad.Spec.Config)
	}
}

// TestAdoptionIsOptIn: a NAD that exists already is left alone and the
// status says why, until the Network asks to adopt it.
func TestAdoptionIsOptIn(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	c := controlplane.Context(t, time.Minute)
	theirs := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","name":"shared","type":"macvlan","master":"eth0"}`},
	}
	if err := cp.Client.Create(c, theirs); err != nil {
		t.Fatal(err)
	}
	nw := macvlanNetwork(ns, "shared")
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, nw, "Failed: NAD exists", func(s *berthv1.NetworkStatus) bool {
		return s.Phase == berthv1.NetworkFailed && strings.Contains(s.Message, `exists and Berth does not manage it; annotate the Network with berth.io/adopt-nad: "true"`)
	})
	if cond := meta.FindStatusCondition(st.Status.Conditions, ConditionNADReady); cond == nil || cond.Reason != "NADExists" {
		t.Errorf("condition %+v", cond)
	}
	got, err := getNAD(ns, "shared")
	if err != nil || got.Spec.Config != theirs.Spec.Config || len(got.OwnerReferences) != 0 {
		t.Fatalf("the existing NAD was touched: %v %+v", err, got)
	}

	update(t, nw, func(n *berthv1.Network) { n.Annotations = map[string]string{network.AnnotationAdoptNAD: "true"} })
	waitNAD(t, nw, "shared")
	waitStatus(t, nw, "Ready after adoption", func(s *berthv1.NetworkStatus) bool {
		return s.Phase == berthv1.NetworkReady && s.Message == "" && meta.IsStatusConditionTrue(s.Conditions, ConditionNADReady)
	})
}

// TestAnnotationsChooseNameAndVersion: berth.io/nad-name and
// berth.io/cni-version shape the NAD; renaming removes the old NAD.
func TestAnnotationsChooseNameAndVersion(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	c := controlplane.Context(t, time.Minute)
	nw := macvlanNetwork(ns, "named")
	nw.Annotations = map[string]string{network.AnnotationNADName: "first-name", network.AnnotationCNIVersion: "0.4.0"}
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	nad := waitNAD(t, nw, "first-name")
	if !strings.Contains(nad.Spec.Config, `"cniVersion": "0.4.0"`) {
		t.Errorf("cniVersion not taken from the annotation:\n%s", nad.Spec.Config)
	}
	update(t, nw, func(n *berthv1.Network) { n.Annotations[network.AnnotationNADName] = "second-name" })
	waitNAD(t, nw, "second-name")
	eventually(t, "the first NAD to be removed", func() (bool, string) {
		_, err := getNAD(ns, "first-name")
		return apierrors.IsNotFound(err), "still there"
	})
	waitStatus(t, nw, "nadName second-name", func(s *berthv1.NetworkStatus) bool { return s.NADName == "second-name" })
}

// TestBadNetworkIsReported: what slips past the webhook (not running here)
// is reported in the status, and no NAD is written.
func TestBadNetworkIsReported(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	nw := macvlanNetwork(ns, "too-long")
	nw.Spec.Macvlan.Master = []string{"enp129s0f0np0"}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), nw); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, nw, "Failed", func(s *berthv1.NetworkStatus) bool {
		return s.Phase == berthv1.NetworkFailed && strings.Contains(s.Message, `the VLAN sub-interface name "enp129s0f0np0.100" would be longer than 15 characters`)
	})
	if _, err := getNAD(ns, "too-long"); !apierrors.IsNotFound(err) {
		t.Errorf("a NAD was written for an invalid Network: %v", err)
	}
}

// TestMissingPoolAndCoordinatorConditions: the status says what the NAD
// lacks.
func TestMissingPoolAndCoordinatorConditions(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	nw := macvlanNetwork(ns, "lacking")
	nw.Spec.IPPools.IPv4 = []string{"ctl-v4", "ctl-nope"}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), nw); err != nil {
		t.Fatal(err)
	}
	waitNAD(t, nw, "lacking")
	waitStatus(t, nw, "PoolsResolved=False", func(s *berthv1.NetworkStatus) bool {
		cond := meta.FindStatusCondition(s.Conditions, ConditionPoolsResolved)
		return s.Phase == berthv1.NetworkReady && cond != nil && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "ctl-nope")
	})
	waitStatus(t, nw, "CoordinatorReady=True", func(s *berthv1.NetworkStatus) bool {
		return meta.IsStatusConditionTrue(s.Conditions, ConditionCoordinatorReady)
	})
}

// TestCoordinatorNotReady: while the Coordinator cannot find the cluster's
// CIDRs the NAD is still written and the Network's status says what its
// pods are waiting for.
func TestCoordinatorNotReady(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	setCoordinator(t, berthv1.PodCIDRCluster, nil, nil)
	t.Cleanup(func() { setCoordinator(t, berthv1.PodCIDRNone, []string{"10.244.0.0/16"}, []string{"10.96.0.0/16"}) })
	nw := macvlanNetwork(ns, "waiting")
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), nw); err != nil {
		t.Fatal(err)
	}
	waitNAD(t, nw, "waiting")
	waitStatus(t, nw, "CoordinatorReady=False", func(s *berthv1.NetworkStatus) bool {
		cond := meta.FindStatusCondition(s.Conditions, ConditionCoordinatorReady)
		return s.Phase == berthv1.NetworkReady && cond != nil && cond.Status == metav1.ConditionFalse &&
			strings.Contains(cond.Message, "kube-system/kubeadm-config not found")
	})
	// A network without the coordinator does not wait for it.
	off := macvlanNetwork(ns, "no-coordinator")
	off.Spec.Coordinator = &berthv1.NetworkCoordinator{Disabled: true}
	if err := cp.Client.Create(controlplane.Context(t, 10*time.Second), off); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, off, "CoordinatorReady=True (NotUsed)", func(s *berthv1.NetworkStatus) bool {
		cond := meta.FindStatusCondition(s.Conditions, ConditionCoordinatorReady)
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == "NotUsed"
	})
}

// TestDeletingTheNetworkDeletesItsNAD: the owner reference lets the garbage
// collector of kube-controller-manager remove the NAD.
func TestDeletingTheNetworkDeletesItsNAD(t *testing.T) {
	startOnce(t)
	ns := namespace(t)
	nw := macvlanNetwork(ns, "short-lived")
	c := controlplane.Context(t, time.Minute)
	if err := cp.Client.Create(c, nw); err != nil {
		t.Fatal(err)
	}
	waitNAD(t, nw, "short-lived")
	if err := cp.Client.Delete(c, nw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the NAD to be garbage-collected", func() (bool, string) {
		_, err := getNAD(ns, "short-lived")
		return apierrors.IsNotFound(err), "still there"
	})
}
