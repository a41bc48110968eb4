package podmutator

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

// shippedEngine is the policy engine with Berth's shipped policies, so that
// Handle is tested with the decisions a cluster would make.
func shippedEngine(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := policies.NewEngine(policies.Options{TimeBudget: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := policies.ShippedSources(nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs, err := e.Load(t.Context(), srcs); err != nil || len(errs) > 0 {
		t.Fatalf("loading the shipped policies: %v %v", err, errs)
	}
	return e
}

// berthConfig is a NAD config whose main plugin uses berth-ipam, as the
// Network controller renders it.
const berthConfig = `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"macvlan","master":"eth1","capabilities":{"ips":true},"ipam":{"type":"berth-ipam"}},{"type":"berth-coordinator"}]}`

// ownIPAMConfig is a custom network's config with an IPAM of its own.
const ownIPAMConfig = `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"macvlan","master":"eth1","ipam":{"type":"host-local","subnet":"10.1.1.0/24"}},{"type":"berth-coordinator"}]}`

func ownedNAD(name, network, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Labels:          map[string]string{"berth.io/network": network},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "berth.io/v1alpha1", Kind: "Network", Name: network, UID: "u2", Controller: ptr.To(true)}}},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}

func customNetwork(name, config string, edit func(*berthv1.Network)) *berthv1.Network {
	nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: config},
	}}
	if edit != nil {
		edit(nw)
	}
	return nw
}

// blueNetwork generates a NAD of another name, blue-nad, and names its pool.
func blueNetwork() *berthv1.Network {
	nw := macvlanNetwork("blue", []string{"blue-v4"})
	nw.Annotations = map[string]string{"berth.io/nad-name": "blue-nad"}
	return nw
}

func macvlanNetwork(name string, v4 []string) *berthv1.Network {
	nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
	}}
	if len(v4) > 0 {
		nw.Spec.IPPools = &berthv1.PoolSelection{IPv4: v4}
	}
	return nw
}

// bluePool serves the Network blue, by its name (not its NAD's).
func bluePool() *berthv1.IPPool {
	return pool("blue-v4", "10.11.0.0/24", func(s *berthv1.IPPoolSpec) { s.Networks = []string{"blue"}; s.Gateway = ptr.To("10.11.0.1") })
}

func newAlloc() *fakeAllocator {
	a := newFakeAllocator()
	for name, subnet := range map[string]string{"blue-v4": "10.11.0.0/24", "open-v4": "10.12.0.0/24", "mine-v4": "10.13.0.0/24"} {
		a.subnets[name] = netip.MustParsePrefix(subnet)
	}
	a.gateways["blue-v4"] = netip.MustParseAddr("10.11.0.1")
	return a
}

// TestDefaultNetworkCarriesDefaultRoute: a pod whose eth0 is a Berth network
// (v1.multus-cni.io/default-network) gets the default route through it when
// nothing else asks for it: the assignment says so (berth-ipam adds the
// default route, berth-coordinator routes eth0 as the default interface)
// and Multus's default-route carries the gateways.
func TestDefaultNetworkCarriesDefaultRoute(t *testing.T) {
	eth0 := storageNet1
	eth0.Interface, eth0.DefaultRoute = "eth0", true
	tests := []struct {
		name string
		ann  map[string]string
		want []jsonpatch.Operation
	}{{
		name: "the default network alone",
		ann:  map[string]string{nadv1.DefaultNetworkAnnotation: "storage"},
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/v1.multus-cni.io~1default-network", mustJSON([]nadv1.NetworkSelectionElement{
				storageElement(eth0, func(e *nadv1.NetworkSelectionElement) { e.GatewayRequest = []string{"10.6.0.1", "fd00:6::1"} }),
			})),
			op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{eth0}})),
			op("add", "/metadata/annotations/berth.io~1policy", "berth/requested-networks"),
		},
	}, {
		name: "with a secondary network that asks for nothing",
		ann:  map[string]string{nadv1.DefaultNetworkAnnotation: "storage", nadv1.NetworksAnnotation: "fast"},
		want: func() []jsonpatch.Operation {
			net1 := fastInterface("net1", "10.9.0.100/24", "fast-v4.10.9.0.100")
			e0 := eth0
			e0.Addresses = []assignment.Address{
				{Address: "10.6.212.100/16", Gateway: "10.6.0.1", Pool: "storage-v4", Allocation: "storage-v4.10.6.212.100"},
				{Address: "fd00:6::100/64", Gateway: "fd00:6::1", Pool: "storage-v6", Allocation: "storage-v6.fd00-6--100"},
			}
			return []jsonpatch.Operation{
				op("replace", "/metadata/annotations/v1.multus-cni.io~1default-network", mustJSON([]nadv1.NetworkSelectionElement{
					storageElement(e0, func(e *nadv1.NetworkSelectionElement) { e.GatewayRequest = []string{"10.6.0.1", "fd00:6::1"} }),
				})),
				op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{fastElement("net1", "10.9.0.100/24", "fast-v4.10.9.0.100")})),
				op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{e0, net1}})),
				op("add", "/metadata/annotations/berth.io~1policy", "berth/requested-networks"),
				op("add", "/spec/containers/0/resources", map[string]any{
					"limits": map[string]any{"berth.io/sriov_netdevice": "1"}, "requests": map[string]any{"berth.io/sriov_netdevice": "1"},
				}),
			}
		}(),
	}, {
		name: "berth.io/default-route-nic names another interface",
		ann:  map[string]string{nadv1.DefaultNetworkAnnotation: "storage", nadv1.NetworksAnnotation: "fast", assignment.DefaultRouteNICAnnotation: "net1"},
		want: func() []jsonpatch.Operation {
			net1 := fastInterface("net1", "10.9.0.100/24", "fast-v4.10.9.0.100")
			net1.DefaultRoute = true
			e0 := eth0
			e0.DefaultRoute = false
			return []jsonpatch.Operation{
				op("replace", "/metadata/annotations/v1.multus-cni.io~1default-network", mustJSON([]nadv1.NetworkSelectionElement{storageElement(e0, nil)})),
				op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{{
					Name: "fast", Namespace: "default", InterfaceRequest: "net1", IPRequest: []string{"10.9.0.100/24"},
					CNIArgs: map[string]any{assignment.CNIArgsKey: net1},
				}})),
				op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{e0, net1}})),
				op("add", "/metadata/annotations/berth.io~1policy", "berth/annotations,berth/requested-networks"),
				op("add", "/spec/containers/0/resources", map[string]any{
					"limits": map[string]any{"berth.io/sriov_netdevice": "1"}, "requests": map[string]any{"berth.io/sriov_netdevice": "1"},
				}),
			}
		}(),
	}}
	eng := shippedEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, eng, newAlloc())
			req := request(podJSON(tt.ann, ""))
			resp := h.Handle(t.Context(), req)
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if got, want := sortedOps(resp.Patches), sortedOps(tt.want); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("patch:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			checkPatchApplies(t, req, resp)
		})
	}
}

// TestNADOfAnotherName: a Network whose NAD has another name
// (berth.io/nad-name) is found by the NAD's name, the one pods ask for, so
// its spec.ippools and its need of the Coordinator apply.
func TestNADOfAnotherName(t *testing.T) {
	blueItf := func(iface string) assignment.Interface {
		return assignment.Interface{Interface: iface, Network: "default/blue-nad", Addresses: []assignment.Address{
			{Address: "10.11.0.100/24", Gateway: "10.11.0.1", Pool: "blue-v4", Allocation: "blue-v4.10.11.0.100"},
		}}
	}
	element := func(itf assignment.Interface) nadv1.NetworkSelectionElement {
		return nadv1.NetworkSelectionElement{Name: "blue-nad", Namespace: "default", InterfaceRequest: itf.Interface,
			IPRequest: []string{itf.Addresses[0].Address}, CNIArgs: map[string]any{assignment.CNIArgsKey: itf}}
	}
	for _, tt := range []struct {
		name  string
		extra []client.Object
	}{
		{"with its NAD", []client.Object{blueNetwork(), bluePool(), ownedNAD("blue-nad", "blue", berthConfig)}},
		{"before the controller wrote the NAD", []client.Object{blueNetwork(), bluePool()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			alloc := newAlloc()
			h := newHandler(t, shippedEngine(t), alloc, tt.extra...)
			req := request(podJSON(map[string]string{nadv1.NetworksAnnotation: "blue-nad"}, ""))
			resp := h.Handle(t.Context(), req)
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			want := []jsonpatch.Operation{
				op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{element(blueItf("net1"))})),
				op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{blueItf("net1")}})),
				op("add", "/metadata/annotations/berth.io~1policy", "berth/requested-networks"),
			}
			if got, want := sortedOps(resp.Patches), sortedOps(want); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("patch:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}

	t.Run("the Coordinator's readiness applies", func(t *testing.T) {
		notReady := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorNotReady, Reason: "no pod CIDRs"}}
		alloc := newAlloc()
		h := newHandler(t, shippedEngine(t), alloc, blueNetwork(), bluePool(), ownedNAD("blue-nad", "blue", berthConfig), notReady)
		resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: "blue-nad"}, "")))
		if resp.Allowed || resp.Result.Code != 503 || !strings.Contains(resp.Result.Message, "networks [default/blue-nad] route through berth-coordinator") {
			t.Fatalf("got allowed=%v %+v, want 503 naming default/blue-nad", resp.Allowed, resp.Result)
		}
		if len(alloc.requests) != 0 {
			t.Errorf("reserved before checking the Coordinator: %+v", alloc.requests)
		}
	})

	t.Run("the policies see the Network under its NAD's name", func(t *testing.T) {
		eval := &fakeEvaluator{dec: decision()}
		h := newHandler(t, eval, newAlloc(), blueNetwork(), bluePool(), ownedNAD("blue-nad", "blue", berthConfig))
		if resp := h.Handle(t.Context(), request(podJSON(nil, ""))); !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		n, ok := eval.input.Networks["default/blue-nad"]
		if !ok || !n.Berth || n.CNIType != "macvlan" || fmt.Sprint(n.IPv4Pools) != "[blue-v4]" || n.Name != "blue-nad" {
			t.Errorf("default/blue-nad: %+v (present %v)", n, ok)
		}
		if n, ok := eval.input.Networks["default/blue"]; ok {
			t.Errorf("the Network is listed under its own name, which no NAD has: %+v", n)
		}
	})
}

// TestNotServedByBerthIPAM: whether Berth serves a network is read from the
// NAD's config (a plugin with ipam.type berth-ipam), not from who made it.
// A network with an IPAM of its own passes through untouched: nothing
// reserved, no cni-args, the user's ips and default-route kept.
func TestNotServedByBerthIPAM(t *testing.T) {
	own := customNetwork("own", ownIPAMConfig, nil)
	open := pool("open-v4", "10.12.0.0/24", func(s *berthv1.IPPoolSpec) { s.Default = true })
	requested := `[{"name":"own","ips":["10.1.1.5/24"],"default-route":["10.1.1.1"],"cni-args":{"berth.io/assignment":{"forged":true},"k":"v"}}]`

	// The shipped static-ips policy checks Multus "ips" only on networks
	// Berth serves: the ips of "own" are its IPAM's business and need no
	// berth.io/static-ips label on the namespace (it has none here).

	t.Run("a custom Network with its own IPAM is not requested from Berth", func(t *testing.T) {
		alloc := newAlloc()
		h := newHandler(t, shippedEngine(t), alloc, own, open, ownedNAD("own", "own", ownIPAMConfig))
		resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: requested}, "")))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		want := []jsonpatch.Operation{op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks",
			`[{"name":"own","namespace":"default","ips":["10.1.1.5/24"],"default-route":["10.1.1.1"],"cni-args":{"k":"v"}}]`)}
		if got, want := sortedOps(resp.Patches), sortedOps(want); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("patch:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
		if len(alloc.requests) != 0 {
			t.Errorf("reserved for a network berth-ipam does not serve: %+v", alloc.requests)
		}
	})

	t.Run(`"ipam": {} and a Network without its NAD yet`, func(t *testing.T) {
		none := customNetwork("none", `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{}}`, nil)
		alloc := newAlloc()
		h := newHandler(t, shippedEngine(t), alloc, none, open)
		resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: "none"}, "")))
		if !resp.Allowed || len(resp.Patches) != 0 || len(alloc.requests) != 0 {
			t.Fatalf("allowed %v, patch %v, reservations %+v: want it left alone", resp.Allowed, resp.Patches, alloc.requests)
		}
	})

	t.Run("a policy attaching it passes it through", func(t *testing.T) {
		alloc := newAlloc()
		dec := decision(policies.Attachment{Network: "default/own", Interface: "net1", Policy: "p", MAC: "0a:00:00:00:00:09"})
		h := newHandler(t, &fakeEvaluator{dec: dec}, alloc, own, open, ownedNAD("own", "own", ownIPAMConfig))
		resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: requested}, "")))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		itf := assignment.Interface{Interface: "net1", Network: "default/own", MAC: "0a:00:00:00:00:09"}
		want := []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks",
				`[{"name":"own","namespace":"default","ips":["10.1.1.5/24"],"mac":"0a:00:00:00:00:09","interface":"net1","default-route":["10.1.1.1"],"cni-args":{"k":"v"}}]`),
			op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{itf}})),
			op("add", "/metadata/annotations/berth.io~1policy", "p"),
		}
		if got, want := sortedOps(resp.Patches), sortedOps(want); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("patch:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
		if len(alloc.requests) != 0 {
			t.Errorf("reserved for a network berth-ipam does not serve: %+v", alloc.requests)
		}
	})

	t.Run("a policy giving it pools is refused", func(t *testing.T) {
		alloc := newAlloc()
		dec := decision(policies.Attachment{Network: "default/own", Interface: "net1", Policy: "p", IPv4: []string{"open-v4"}})
		h := newHandler(t, &fakeEvaluator{dec: dec}, alloc, own, open, ownedNAD("own", "own", ownIPAMConfig))
		resp := h.Handle(t.Context(), request(podJSON(nil, "")))
		want := `pod "default/web-*": [p] interface net1 (network default/own): the network's NetworkAttachmentDefinition does not use berth-ipam, so Berth reserves no addresses for it: it cannot be given pools (ipv4 [open-v4], ipv6 []) or static addresses []`
		if resp.Allowed || resp.Result.Code != 422 || resp.Result.Message != want {
			t.Fatalf("got allowed=%v %+v\nwant 422 %q", resp.Allowed, resp.Result, want)
		}
	})

	t.Run("a hand-written NAD using berth-ipam is served", func(t *testing.T) {
		mine := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "default"},
			Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: berthConfig}}
		minePool := pool("mine-v4", "10.13.0.0/24", func(s *berthv1.IPPoolSpec) { s.Default = true; s.Networks = []string{"default/mine"} })
		alloc := newAlloc()
		h := newHandler(t, shippedEngine(t), alloc, mine, minePool)
		resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: "mine"}, "")))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		if len(alloc.requests) != 1 || fmt.Sprint(alloc.requests[0].IPv4Pools) != "[mine-v4]" {
			t.Fatalf("reservations %+v, want one from mine-v4", alloc.requests)
		}
	})
}

// TestPoolsOfANetworkAreChecked: the pools a Network names in spec.ippools
// (which no policy checks) must select the pod's namespace and the pod and
// serve the network: the others are skipped, and a pod left with none is
// refused with every pool's reason.
func TestPoolsOfANetworkAreChecked(t *testing.T) {
	open := pool("open-v4", "10.12.0.0/24", func(*berthv1.IPPoolSpec) {})
	dbOnly := pool("db-v4", "10.12.1.0/24", func(s *berthv1.IPPoolSpec) {
		s.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	})
	elsewhere := pool("elsewhere-v4", "10.12.2.0/24", func(s *berthv1.IPPoolSpec) { s.Networks = []string{"other/net"} })
	tests := []struct {
		name  string
		pools []string
		// pinned binds the pod to node-r2.
		pinned bool
		// want is the candidate list handed to the allocator, or the denial.
		want, denial string
	}{{
		name:   "another tenant's pool named by a Network of this namespace",
		pools:  []string{"tenant-b-v4"},
		denial: `pod "default/web-*": [berth/requested-networks] interface net1 (network default/thief): none of the ipv4 pools [tenant-b-v4] from spec.ippools of Network default/thief may serve this pod: pool "tenant-b-v4" does not serve namespace "default": its spec.namespaceSelector does not select it`,
	}, {
		name:  "refused pools are skipped",
		pools: []string{"tenant-b-v4", "db-v4", "open-v4"},
		want:  "[open-v4]",
	}, {
		name:  "every reason is given",
		pools: []string{"tenant-b-v4", "db-v4", "elsewhere-v4", "rack1-v4"}, pinned: true,
		denial: `pod "default/web-*": [berth/requested-networks] interface net1 (network default/thief): none of the ipv4 pools [tenant-b-v4 db-v4 elsewhere-v4 rack1-v4] from spec.ippools of Network default/thief may serve this pod: ` +
			`pool "tenant-b-v4" does not serve namespace "default": its spec.namespaceSelector does not select it; ` +
			`pool "db-v4" does not serve this pod: its spec.podSelector does not select the pod's labels; ` +
			`pool "elsewhere-v4" serves networks [other/net], not default/thief; ` +
			`pool "rack1-v4" does not serve node "node-r2", to which the pod is bound (spec.nodeName)`,
	}, {
		name:  "a pinned pod skips the pools of other nodes",
		pools: []string{"rack1-v4", "rack2-v4"}, pinned: true,
		want: "[rack2-v4]",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thief := macvlanNetwork("thief", tt.pools)
			alloc := newAlloc()
			for _, name := range []string{"db-v4", "elsewhere-v4"} {
				alloc.subnets[name] = netip.MustParsePrefix("10.12.9.0/24")
			}
			// The rack pools serve the Network rack; here they serve any.
			rack1 := pool("rack1-v4", "10.8.1.0/24", func(s *berthv1.IPPoolSpec) {
				s.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r1"}}
			})
			rack2 := pool("rack2-v4", "10.8.2.0/24", func(s *berthv1.IPPoolSpec) { s.NodeNames = []string{"node-r2"} })
			h := newHandler(t, shippedEngine(t), alloc, thief, open, dbOnly, elsewhere, rack1, rack2)
			spec := ""
			if tt.pinned {
				spec = `"containers":[{"name":"app","image":"busybox"}],"nodeName":"node-r2"`
			}
			resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: "thief"}, spec)))
			if tt.denial != "" {
				if resp.Allowed || resp.Result.Code != 403 || resp.Result.Message != tt.denial {
					t.Fatalf("got allowed=%v %+v\nwant 403 %q", resp.Allowed, resp.Result, tt.denial)
				}
				if len(alloc.requests) != 0 {
					t.Errorf("reserved for a refused pod: %+v", alloc.requests)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if len(alloc.requests) != 1 || fmt.Sprint(alloc.requests[0].IPv4Pools) != tt.want {
				t.Fatalf("reservations %+v, want one from %s", alloc.requests, tt.want)
			}
		})
	}
}
