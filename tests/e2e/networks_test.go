package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// TestDefaultNetworkDefaultRoute: a pod whose eth0 is a Berth Network
// (v1.multus-cni.io/default-network) gets its default route through eth0's
// gateway, for both families: the assignment says eth0 carries it, so
// berth-ipam returns the default routes and berth-coordinator (underlay on
// eth0) keeps them in the main table.
func TestDefaultNetworkDefaultRoute(t *testing.T) {
	netsim.RequireRoot(t)
	start(t)
	dirs := plugins(t)
	ns := namespace(t, "eth0route", nil, nil)
	create(t,
		ippool("eth0route-v4", "10.32.0.0/16", []string{"10.32.1.10-10.32.1.20"}, func(s *berthv1.IPPoolSpec) {
			s.Gateway = ptr.To("10.32.0.1")
			s.Networks = []string{ns + "/underlay"}
		}),
		ippool("eth0route-v6", "fd00:32::/64", []string{"fd00:32::10-fd00:32::20"}, func(s *berthv1.IPPoolSpec) {
			s.Gateway = ptr.To("fd00:32::1")
			s.Networks = []string{ns + "/underlay"}
		}),
	)
	create(t, macvlan(ns, "underlay", []string{"eth0route-v4"}, []string{"eth0route-v6"}))
	waitNAD(t, ns, "underlay")
	create(t, pod(ns, "app", map[string]string{nadv1.DefaultNetworkAnnotation: "underlay"}, nil))
	p := pods(t, ns, nil, 1)[0]
	itf, ok := assignmentOf(t, &p).Lookup("eth0")
	if !ok || !itf.DefaultRoute {
		t.Fatalf("assignment of eth0 %+v: want it to carry the default route", itf)
	}
	def, err := nadv1.ParseNetworkSelection(p.Annotations[nadv1.DefaultNetworkAnnotation], ns)
	if err != nil || len(def) != 1 || strings.Join(def[0].GatewayRequest, ",") != "10.32.0.1,fd00:32::1" {
		t.Fatalf("default-network annotation %q (%v): want default-route through both gateways", p.Annotations[nadv1.DefaultNetworkAnnotation], err)
	}

	u := netsim.NewUnderlay(t, netsim.UnderlayConfig{
		Gateway: []netip.Prefix{netip.MustParsePrefix("10.32.0.1/16"), netip.MustParsePrefix("fd00:32::1/64")},
		Nodes:   [][]netip.Prefix{{netip.MustParsePrefix("10.32.0.100/16")}},
		Uplink:  "eth1",
	})
	podNS := netsim.NewNS(t, "e2e-eth0")
	drv := &multus.Driver{Client: cp.Client, Runtime: multus.Runtime{BinDirs: dirs, CacheDir: t.TempDir(), Exec: &netsim.PluginExec{NS: u.Nodes[0]}}}
	ctx := ctxFor(t, 2*time.Minute)
	res, err := drv.Attach(ctx, &p, podNS.Path)
	if err != nil {
		t.Fatalf("attaching pod %s as Multus would: %v", p.Name, err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].IfName != "eth0" {
		t.Fatalf("attached %+v, want eth0 alone", res.Interfaces)
	}
	for _, tt := range []struct{ family, want string }{{"-4", "default via 10.32.0.1 dev eth0"}, {"-6", "default via fd00:32::1 dev eth0"}} {
		out, err := podNS.Run(ctx, "ip", tt.family, "route", "show", "default")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.TrimSpace(out), tt.want) {
			t.Errorf("ip %s route show default in the pod:\n%s\nwant %q", tt.family, out, tt.want)
		}
	}
	// An address outside the pod's subnets (the gateway's, on its bridge)
	// is reached through the default route alone.
	if _, err := u.Gateway.Run(ctx, "ip", "addr", "add", "192.0.2.1/32", "dev", "br0"); err != nil {
		t.Fatal(err)
	}
	if err := podNS.Ping(ctx, "192.0.2.1"); err != nil {
		t.Errorf("the pod does not reach 192.0.2.1 through its default route: %v", err)
	}
	if err := drv.Detach(ctx, &p, podNS.Path); err != nil {
		t.Fatalf("detaching: %v", err)
	}
	forceDelete(t, ns, nil)
}

// TestNADNameAnnotation: a Network whose NAD has another name
// (berth.io/nad-name) serves pods naming that NAD, with the pools of its
// spec.ippools.
func TestNADNameAnnotation(t *testing.T) {
	start(t)
	ns := namespace(t, "nadname", nil, nil)
	create(t, ippool("nadname-v4", "10.33.0.0/24", []string{"10.33.0.10-10.33.0.20"}, func(s *berthv1.IPPoolSpec) {
		s.Networks = []string{ns + "/blue"}
	}))
	nw := macvlan(ns, "blue", []string{"nadname-v4"}, nil)
	nw.Annotations = map[string]string{"berth.io/nad-name": "blue-nad"}
	create(t, nw)
	waitNAD(t, ns, "blue-nad")
	p := pod(ns, "app", map[string]string{nadv1.NetworksAnnotation: "blue-nad"}, nil)
	create(t, p)
	a := assignmentOf(t, p)
	if got := address(t, a, "net1", 4); got.Pool != "nadname-v4" {
		t.Errorf("address %+v, want one of nadname-v4", got)
	}
	if itf, _ := a.Lookup("net1"); itf.Network != ns+"/blue-nad" {
		t.Errorf("network %q, want the NAD's %s/blue-nad", itf.Network, ns)
	}
	forceDelete(t, ns, nil)
}

// TestPoolsNamingNetworkAndNADShareIt: a pool naming a Network and another
// naming the NAD it generates (berth.io/nad-name) serve the same pods, so
// the second may not hand out the first's addresses: the IPPool webhook
// refuses it, naming the Network and the NAD that join them.
func TestPoolsNamingNetworkAndNADShareIt(t *testing.T) {
	start(t)
	ns := namespace(t, "nadpools", nil, nil)
	nw := macvlan(ns, "blue", nil, nil)
	nw.Annotations = map[string]string{"berth.io/nad-name": "blue-nad"}
	create(t, nw)
	waitNAD(t, ns, "blue-nad")
	create(t, ippool("nadpools-net", "10.37.0.0/24", []string{"10.37.0.10-10.37.0.50"}, func(s *berthv1.IPPoolSpec) {
		s.Networks = []string{ns + "/blue"}
	}))
	want := `admission webhook "ippools.validate.berth.io" denied the request: ippool "nadpools-nad": spec.ips: addresses 10.37.0.40-10.37.0.50 are also handed out by ippool "nadpools-net", ` +
		`which serves the same networks ([` + ns + `/blue-nad] and [` + ns + `/blue]: both name Network ` + ns + `/blue, whose NetworkAttachmentDefinition is ` + ns + `/blue-nad)`
	// Each webhook replica learns of the Network through its cache; until
	// then it takes the names for two networks. Retry until refused.
	ctx := ctxFor(t, 30*time.Second)
	var last error
	if err := poll(ctx, func() (bool, error) {
		p := ippool("nadpools-nad", "10.37.0.0/24", []string{"10.37.0.40-10.37.0.60"}, func(s *berthv1.IPPoolSpec) {
			s.Networks = []string{ns + "/blue-nad"}
		})
		last = cp.Client.Create(ctx, p)
		if last == nil {
			return false, cp.Client.Delete(ctx, p)
		}
		return strings.Contains(last.Error(), want), nil
	}); err != nil {
		t.Fatalf("the overlapping pool naming the NAD was not refused as wanted: %v\nlast answer: %v\nwant it to contain: %s", err, last, want)
	}
	// A pool of another namespace's blue-nad is another network.
	create(t, ippool("nadpools-elsewhere", "10.37.0.0/24", []string{"10.37.0.40-10.37.0.60"}, func(s *berthv1.IPPoolSpec) {
		s.Networks = []string{"other/blue-nad"}
	}))
}

// TestNetworkCannotTakeAnotherTenantsPool: a Network in the thief's
// namespace naming a pool restricted to another namespace does not get the
// thief's pods an address from it.
func TestNetworkCannotTakeAnotherTenantsPool(t *testing.T) {
	start(t)
	namespace(t, "victim", nil, nil)
	thief := namespace(t, "thief", nil, nil)
	// The pool serves every network, but only the victim's namespace.
	create(t, ippool("victim-v4", "10.34.0.0/24", []string{"10.34.0.10-10.34.0.20"}, func(s *berthv1.IPPoolSpec) {
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "victim"}}
	}))
	create(t, macvlan(thief, "net", []string{"victim-v4"}, nil))
	waitNAD(t, thief, "net")
	denied(t, pod(thief, "p", map[string]string{nadv1.NetworksAnnotation: "net"}, nil),
		webhookDenied+`pod "thief/p": [berth/requested-networks] interface net1 (network thief/net): none of the ipv4 pools [victim-v4] from spec.ippools of Network thief/net may serve this pod: `+
			`pool "victim-v4" does not serve namespace "thief": its spec.namespaceSelector does not select it`)
	if n := len(allocations(t, "victim-v4")); n != 0 {
		t.Errorf("%d allocations in the victim's pool", n)
	}
}

// TestNetworksNotServedByBerthIPAM: a custom Network with an IPAM of its own
// is left to it (no reservation, its selection element untouched), and a
// hand-written NAD that uses berth-ipam is served.
func TestNetworksNotServedByBerthIPAM(t *testing.T) {
	start(t)
	ns := namespace(t, "ownipam", nil, nil)
	create(t, &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own"}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeCustom,
		Custom:  &berthv1.CustomConfig{Config: `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"host-local","subnet":"10.35.9.0/24"}}`},
	}})
	waitNAD(t, ns, "own")
	requested := `[{"name":"own","interface":"data","mac":"0a:00:00:00:00:23"}]`
	p := pod(ns, "own", map[string]string{nadv1.NetworksAnnotation: requested}, nil)
	create(t, p)
	if v, ok := p.Annotations[assignment.Annotation]; ok {
		t.Errorf("an assignment for a network berth-ipam does not serve: %s", v)
	}
	if got := p.Annotations[nadv1.NetworksAnnotation]; got != requested {
		t.Errorf("networks annotation %s, want it untouched: %s", got, requested)
	}

	config, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "mine", "plugins": []any{
		map[string]any{"type": "macvlan", "master": "eth1", "capabilities": map[string]bool{"ips": true}, "ipam": map[string]any{"type": "berth-ipam"}},
	}})
	create(t, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: string(config)}})
	create(t, ippool("ownipam-mine", "10.35.0.0/24", []string{"10.35.0.10-10.35.0.20"}, func(s *berthv1.IPPoolSpec) {
		s.Default = true
		s.Networks = []string{ns + "/mine"}
	}))
	// The webhook's cache sees the NAD and the pool within moments; until
	// then the pod is admitted without an assignment.
	ctx := ctxFor(t, 30*time.Second)
	var mine *corev1.Pod
	if err := poll(ctx, func() (bool, error) {
		mine = pod(ns, fmt.Sprintf("mine-%d", time.Now().UnixNano()), map[string]string{nadv1.NetworksAnnotation: "mine"}, nil)
		if err := cp.Client.Create(ctx, mine); err != nil {
			return false, err
		}
		_, ok := mine.Annotations[assignment.Annotation]
		return ok, nil
	}); err != nil {
		t.Fatalf("no pod on the hand-written NAD got an assignment: %v", err)
	}
	if got := address(t, assignmentOf(t, mine), "net1", 4); got.Pool != "ownipam-mine" {
		t.Errorf("address %+v, want one of ownipam-mine", got)
	}
	forceDelete(t, ns, nil)
}

// TestUnknownSelectionKeysKept: a selection element key Berth's type does
// not know (Multus ignores unknown keys) is accepted and survives the
// enrichment.
func TestUnknownSelectionKeysKept(t *testing.T) {
	start(t)
	tenant(t, "unknownkeys", "10.36.0.0/24", "10.36.0.10", "10.36.0.20", nil)
	p := pod("unknownkeys", "p", map[string]string{nadv1.NetworksAnnotation: `[{"name":"net","x-future":{"a":[1,"b"]}}]`}, nil)
	create(t, p)
	elems, err := nadv1.ParseNetworkSelection(p.Annotations[nadv1.NetworksAnnotation], p.Namespace)
	if err != nil || len(elems) != 1 {
		t.Fatalf("networks annotation %s: %v", p.Annotations[nadv1.NetworksAnnotation], err)
	}
	if got := string(elems[0].Unknown["x-future"]); got != `{"a":[1,"b"]}` {
		t.Errorf("x-future after enrichment: %q, want {\"a\":[1,\"b\"]}; annotation %s", got, p.Annotations[nadv1.NetworksAnnotation])
	}
	if _, ok := elems[0].CNIArgs[assignment.CNIArgsKey]; !ok {
		t.Errorf("the element was not enriched: %s", p.Annotations[nadv1.NetworksAnnotation])
	}
}
