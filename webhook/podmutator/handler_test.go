package podmutator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

const berthSA = "system:serviceaccount:berth-system:berth-controller"

// fakeEvaluator answers with a fixed decision (or error) and keeps the input.
type fakeEvaluator struct {
	dec   *policies.Decision
	err   error
	input *policies.Input
}

func (f *fakeEvaluator) Evaluate(_ context.Context, in *policies.Input) (*policies.Decision, error) {
	f.input = in
	return f.dec, f.err
}

// fakeAllocator hands out the next address of the first pool of each family,
// from .100 (or ::100) on, and records what it reserved and released.
type fakeAllocator struct {
	subnets  map[string]netip.Prefix
	gateways map[string]netip.Addr
	next     map[string]int
	fail     map[string]error // by pool
	requests []allocator.Request
	live     map[string]allocator.Reservation
	released []string
}

func newFakeAllocator() *fakeAllocator {
	return &fakeAllocator{
		subnets: map[string]netip.Prefix{
			"storage-v4": netip.MustParsePrefix("10.6.0.0/16"), "storage-v6": netip.MustParsePrefix("fd00:6::/64"),
			"rack1-v4": netip.MustParsePrefix("10.8.1.0/24"), "rack2-v4": netip.MustParsePrefix("10.8.2.0/24"),
			"fast-v4": netip.MustParsePrefix("10.9.0.0/24"), "tenant-b-v4": netip.MustParsePrefix("10.10.0.0/24"),
		},
		gateways: map[string]netip.Addr{"storage-v4": netip.MustParseAddr("10.6.0.1"), "storage-v6": netip.MustParseAddr("fd00:6::1")},
		next:     map[string]int{},
		fail:     map[string]error{},
		live:     map[string]allocator.Reservation{},
	}
}

func (f *fakeAllocator) Reserve(_ context.Context, req allocator.Request) ([]allocator.Reservation, error) {
	f.requests = append(f.requests, req)
	var out []allocator.Reservation
	for _, pools := range [][]string{req.IPv4Pools, req.IPv6Pools} {
		if len(pools) == 0 {
			continue
		}
		pool := pools[0]
		if err := f.fail[pool]; err != nil {
			for _, r := range out { // both families or neither
				delete(f.live, r.Allocation)
			}
			return nil, err
		}
		prefix := f.subnets[pool]
		addr := prefix.Addr()
		if prefix.Addr().Is4() {
			a := addr.As4()
			a[2], a[3] = 212, byte(100+f.next[pool])
			if pool != "storage-v4" {
				a[2] = prefix.Addr().As4()[2]
			}
			addr = netip.AddrFrom4(a)
		} else {
			a := addr.As16()
			a[14], a[15] = 1, byte(f.next[pool])
			addr = netip.AddrFrom16(a)
		}
		f.next[pool]++
		r := allocator.Reservation{Pool: pool, Allocation: berthv1.AllocationName(pool, addr), Address: netip.PrefixFrom(addr, prefix.Bits()), Gateway: f.gateways[pool]}
		if pool == "storage-v4" {
			r.Routes = []berthv1.Route{{Dst: "10.7.0.0/16"}}
			r.DNS = &berthv1.DNS{Nameservers: []string{"10.6.0.53"}}
		}
		f.live[r.Allocation] = r
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeAllocator) Release(_ context.Context, res []allocator.Reservation) error {
	for _, r := range res {
		delete(f.live, r.Allocation)
		f.released = append(f.released, r.Allocation)
	}
	return nil
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, berthv1.AddToScheme, nadv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// cluster is the state the handler reads in every test.
func cluster() []client.Object {
	owner := []metav1.OwnerReference{{APIVersion: "berth.io/v1alpha1", Kind: "Network", Name: "storage", UID: "u1"}}
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default", "tenant": "a"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-r1", Labels: map[string]string{"rack": "r1"}}},
		&berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorSynced}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-r2", Labels: map[string]string{"rack": "r2"}}},
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: "default"}, Spec: berthv1.NetworkSpec{
			CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
			IPPools: &berthv1.PoolSelection{IPv4: []string{"storage-v4"}, IPv6: []string{"storage-v6"}},
		}},
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "fast", Namespace: "default"}, Spec: berthv1.NetworkSpec{
			CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice"},
		}},
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "rack", Namespace: "default"}, Spec: berthv1.NetworkSpec{
			CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}},
		}},
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: "default", OwnerReferences: owner}},
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "default"}},
		pool("storage-v4", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) { s.Networks = []string{"storage"}; s.Gateway = ptr.To("10.6.0.1") }),
		pool("storage-v6", "fd00:6::/64", func(s *berthv1.IPPoolSpec) { s.Networks = []string{"storage"}; s.Gateway = ptr.To("fd00:6::1") }),
		pool("fast-v4", "10.9.0.0/24", func(s *berthv1.IPPoolSpec) { s.Networks = []string{"fast"}; s.Default = true }),
		pool("rack1-v4", "10.8.1.0/24", func(s *berthv1.IPPoolSpec) {
			s.Networks = []string{"rack"}
			s.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r1"}}
		}),
		pool("rack2-v4", "10.8.2.0/24", func(s *berthv1.IPPoolSpec) {
			s.Networks = []string{"rack"}
			s.NodeNames = []string{"node-r2"}
		}),
		pool("tenant-b-v4", "10.10.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.Default = true
			s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "b"}}
		}),
	}
}

func pool(name, subnet string, edit func(*berthv1.IPPoolSpec)) *berthv1.IPPool {
	p := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet}}
	edit(&p.Spec)
	return p
}

func newHandler(t *testing.T, eval policies.Evaluator, alloc allocator.Interface, extra ...client.Object) *Handler {
	t.Helper()
	s := scheme(t)
	objs := cluster()
	for _, e := range extra { // replace objects of the same name
		objs = slices.DeleteFunc(objs, func(o client.Object) bool {
			return o.GetName() == e.GetName() && fmt.Sprintf("%T", o) == fmt.Sprintf("%T", e)
		})
		objs = append(objs, e)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&berthv1.Coordinator{}).Build()
	h, err := New(Dependencies{Cache: c, APIReader: c, Policies: eval, Allocator: alloc, Scheme: s,
		ServiceAccount: berthSA, ExemptNamespaces: []string{"kube-system", "berth-system"}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// request builds a raw CREATE request for pod JSON.
func request(podJSON string, edit ...func(*admissionv1.AdmissionRequest)) admission.Request {
	req := admissionv1.AdmissionRequest{
		UID:       types.UID("req-1"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "default",
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller"},
		Object:    runtime.RawExtension{Raw: []byte(podJSON)},
	}
	for _, e := range edit {
		e(&req)
	}
	return admission.Request{AdmissionRequest: req}
}

// podJSON writes a pod with annotations and extra top-level spec JSON.
func podJSON(annotations map[string]string, spec string) string {
	ann := ""
	if annotations != nil {
		data, _ := json.Marshal(annotations)
		ann = `"annotations":` + string(data) + ","
	}
	if spec == "" {
		spec = `"containers":[{"name":"app","image":"busybox"}]`
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":"default",%s"labels":{"app":"web"}},"spec":{%s}}`, ann, spec)
}

func op(operation, path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: operation, Path: path, Value: value}
}

// sortedOps orders operations by path: the patch library walks maps in
// random order, and the order of operations on distinct paths is immaterial.
func sortedOps(ops []jsonpatch.Operation) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		v, _ := json.Marshal(o.Value)
		out[i] = o.Operation + " " + o.Path + " " + string(v)
	}
	sort.Strings(out)
	return out
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// storageNet1 is the assignment of net1 on default/storage from the fake
// allocator's first addresses.
var storageNet1 = assignment.Interface{
	Interface: "net1", Network: "default/storage",
	Addresses: []assignment.Address{
		{Address: "10.6.212.100/16", Gateway: "10.6.0.1", Pool: "storage-v4", Allocation: "storage-v4.10.6.212.100"},
		{Address: "fd00:6::100/64", Gateway: "fd00:6::1", Pool: "storage-v6", Allocation: "storage-v6.fd00-6--100"},
	},
	Routes: []assignment.Route{{Dst: "10.7.0.0/16"}},
	DNS:    &assignment.DNS{Nameservers: []string{"10.6.0.53"}},
}

func storageElement(itf assignment.Interface, extra func(*nadv1.NetworkSelectionElement)) nadv1.NetworkSelectionElement {
	e := nadv1.NetworkSelectionElement{Name: "storage", Namespace: "default", InterfaceRequest: itf.Interface,
		CNIArgs: map[string]any{assignment.CNIArgsKey: itf}}
	for _, a := range itf.Addresses {
		e.IPRequest = append(e.IPRequest, a.Address)
	}
	if extra != nil {
		extra(&e)
	}
	return e
}

func decision(atts ...policies.Attachment) *policies.Decision {
	d := &policies.Decision{Attachments: atts}
	seen := map[string]bool{}
	for _, a := range atts {
		if !seen[a.Policy] {
			d.Policies = append(d.Policies, a.Policy)
			seen[a.Policy] = true
		}
	}
	return d
}

func TestHandlePatches(t *testing.T) {
	storageAtt := policies.Attachment{Network: "default/storage", Interface: "net1", Policy: "annotations"}
	tests := []struct {
		name string
		req  admission.Request
		dec  *policies.Decision
		want []jsonpatch.Operation
		// reserved are the allocations left held after the request.
		reserved []string
		warning  string
	}{{
		name: "update is not mutated",
		req:  request(podJSON(nil, ""), func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update }),
		dec:  decision(storageAtt),
	}, {
		name: "Berth's own service account is left alone",
		req:  request(podJSON(nil, ""), func(r *admissionv1.AdmissionRequest) { r.UserInfo.Username = berthSA }),
		dec:  decision(storageAtt),
	}, {
		name: "kube-system is left alone",
		req:  request(podJSON(nil, ""), func(r *admissionv1.AdmissionRequest) { r.Namespace = "kube-system" }),
		dec:  decision(storageAtt),
	}, {
		name: "a pod no policy attaches is not patched",
		req:  request(podJSON(map[string]string{"team": "x"}, "")),
		dec:  decision(),
	}, {
		name: "forged outputs on a pod without attachments are removed",
		req:  request(podJSON(map[string]string{assignment.Annotation: `{"interfaces":[]}`, assignment.PolicyAnnotation: "mine"}, "")),
		dec:  decision(),
		want: []jsonpatch.Operation{
			op("remove", "/metadata/annotations/berth.io~1assignment", nil),
			op("remove", "/metadata/annotations/berth.io~1policy", nil),
		},
	}, {
		name: "plain Multus annotation is enriched and the assignment written",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: "storage"}, "")),
		dec:  decision(storageAtt),
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{storageElement(storageNet1, nil)})),
			op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{storageNet1}})),
			op("add", "/metadata/annotations/berth.io~1policy", "annotations"),
		},
		reserved: []string{"storage-v4.10.6.212.100", "storage-v6.fd00-6--100"},
	}, {
		name: "a forged assignment is overwritten, user cni-args and fields kept, keys Berth does not know kept, other elements kept",
		req: request(podJSON(map[string]string{
			assignment.Annotation:    `{"interfaces":[{"interface":"net1","network":"default/storage","addresses":[{"address":"10.6.212.200/16","pool":"storage-v4","allocation":"x"}]}]}`,
			nadv1.NetworksAnnotation: `[{"name":"plain","interface":"data","cni-args":{"berth.io/assignment":{"forged":true}},"x-other":1},{"name":"storage","interface":"net1","cni-args":{"team":"x"},"bandwidth":{"ingressRate":1000},"x-future":{"k":[1]}}]`,
		}, "")),
		dec: decision(storageAtt),
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{
				{Name: "plain", Namespace: "default", InterfaceRequest: "data", Unknown: map[string]json.RawMessage{"x-other": json.RawMessage(`1`)}},
				storageElement(storageNet1, func(e *nadv1.NetworkSelectionElement) {
					e.CNIArgs["team"] = "x"
					e.BandwidthRequest = json.RawMessage(`{"ingressRate":1000}`)
					e.Unknown = map[string]json.RawMessage{"x-future": json.RawMessage(`{"k":[1]}`)}
				}),
			})),
			op("replace", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{storageNet1}})),
			op("add", "/metadata/annotations/berth.io~1policy", "annotations"),
		},
		reserved: []string{"storage-v4.10.6.212.100", "storage-v6.fd00-6--100"},
	}, {
		name: "an attachment added by a policy gets the next interface name after the requested ones",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: "plain"}, "")),
		dec:  decision(policies.Attachment{Network: "default/storage", Policy: "storage-tier", DefaultRoute: true}),
		want: func() []jsonpatch.Operation {
			itf := storageNet1
			itf.Interface, itf.DefaultRoute = "net2", true
			return []jsonpatch.Operation{
				op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{
					{Name: "plain", Namespace: "default"},
					storageElement(itf, func(e *nadv1.NetworkSelectionElement) { e.GatewayRequest = []string{"10.6.0.1", "fd00:6::1"} }),
				})),
				op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{itf}})),
				op("add", "/metadata/annotations/berth.io~1policy", "storage-tier"),
			}
		}(),
		reserved: []string{"storage-v4.10.6.212.100", "storage-v6.fd00-6--100"},
	}, {
		name: "an attachment on eth0 becomes the default network, with its namespace written",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/storage", Interface: "eth0", Policy: "underlay", MAC: "0a:1b:0a:06:d4:64"}),
		want: func() []jsonpatch.Operation {
			itf := storageNet1
			itf.Interface, itf.MAC = "eth0", "0a:1b:0a:06:d4:64"
			return []jsonpatch.Operation{
				op("add", "/metadata/annotations", map[string]any{
					nadv1.DefaultNetworkAnnotation: mustJSON([]nadv1.NetworkSelectionElement{
						storageElement(itf, func(e *nadv1.NetworkSelectionElement) { e.MacRequest = itf.MAC }),
					}),
					assignment.Annotation:       mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{itf}}),
					assignment.PolicyAnnotation: "underlay",
				}),
			}
		}(),
		reserved: []string{"storage-v4.10.6.212.100", "storage-v6.fd00-6--100"},
	}, {
		name: "SR-IOV attachments add their resource to the first container, one per attachment",
		req: request(podJSON(map[string]string{nadv1.NetworksAnnotation: "fast,fast"},
			`"containers":[{"name":"app","image":"busybox","resources":{"limits":{"cpu":"1"}}},{"name":"side","image":"busybox"}]`)),
		dec: decision(policies.Attachment{Network: "default/fast", Interface: "net1", Policy: "p"}, policies.Attachment{Network: "default/fast", Interface: "net2", Policy: "p"}),
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{
				fastElement("net1", "10.9.0.100/24", "fast-v4.10.9.0.100"), fastElement("net2", "10.9.0.101/24", "fast-v4.10.9.0.101"),
			})),
			op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{
				fastInterface("net1", "10.9.0.100/24", "fast-v4.10.9.0.100"), fastInterface("net2", "10.9.0.101/24", "fast-v4.10.9.0.101"),
			}})),
			op("add", "/metadata/annotations/berth.io~1policy", "p"),
			op("add", "/spec/containers/0/resources/limits/berth.io~1sriov_netdevice", "2"),
			op("add", "/spec/containers/0/resources/requests", map[string]any{"berth.io/sriov_netdevice": "2"}),
		},
		reserved: []string{"fast-v4.10.9.0.100", "fast-v4.10.9.0.101"},
	}, {
		name: "a node-bound pool adds a required node affinity, ANDed with the pod's own",
		req:  request(podJSON(nil, `"containers":[{"name":"app","image":"busybox"}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["z1"]}]}]}}}`)),
		dec:  decision(policies.Attachment{Network: "default/rack", Interface: "net1", Policy: "p", IPv4: []string{"rack1-v4"}}),
		want: []jsonpatch.Operation{
			op("add", "/metadata/annotations", map[string]any{
				nadv1.NetworksAnnotation:    mustJSON([]nadv1.NetworkSelectionElement{rackElement("rack1-v4", "10.8.1.100/24")}),
				assignment.Annotation:       mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{rackInterface("rack1-v4", "10.8.1.100/24")}}),
				assignment.PolicyAnnotation: "p",
			}),
			op("add", "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/1",
				map[string]any{"key": "rack", "operator": "In", "values": []any{"r1"}}),
		},
		reserved: []string{"rack1-v4.10.8.1.100"},
	}, {
		name: "a pod pinned to a node gets the pool serving that node and no affinity",
		req:  request(podJSON(nil, `"containers":[{"name":"app","image":"busybox"}],"nodeName":"node-r2"`)),
		dec:  decision(policies.Attachment{Network: "default/rack", Interface: "net1", Policy: "p", IPv4: []string{"rack1-v4", "rack2-v4"}}),
		want: []jsonpatch.Operation{
			op("add", "/metadata/annotations", map[string]any{
				nadv1.NetworksAnnotation:    mustJSON([]nadv1.NetworkSelectionElement{rackElement("rack2-v4", "10.8.2.100/24")}),
				assignment.Annotation:       mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{rackInterface("rack2-v4", "10.8.2.100/24")}}),
				assignment.PolicyAnnotation: "p",
			}),
		},
		reserved: []string{"rack2-v4.10.8.2.100"},
	}, {
		name: "dry run evaluates and patches without reserving",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: "storage"}, ""), func(r *admissionv1.AdmissionRequest) { r.DryRun = ptr.To(true) }),
		dec:  decision(storageAtt),
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", `[{"name":"storage","namespace":"default","interface":"net1"}]`),
			op("add", "/metadata/annotations/berth.io~1policy", "annotations"),
		},
		warning: "dry run: Berth evaluated the policies but reserved no addresses",
	}, {
		name: "fields the Go type does not know survive: no remove operation",
		req: request(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","annotations":{"k8s.v1.cni.cncf.io/networks":"storage"},"futureMeta":{"a":1}},` +
			`"spec":{"containers":[{"name":"app","image":"busybox","futureContainerField":true}],"futureSpecField":{"big":12345678901234567890}}}`),
		dec: decision(storageAtt),
		want: []jsonpatch.Operation{
			op("replace", "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", mustJSON([]nadv1.NetworkSelectionElement{storageElement(storageNet1, nil)})),
			op("add", "/metadata/annotations/berth.io~1assignment", mustJSON(assignment.Assignment{Interfaces: []assignment.Interface{storageNet1}})),
			op("add", "/metadata/annotations/berth.io~1policy", "annotations"),
		},
		reserved: []string{"storage-v4.10.6.212.100", "storage-v6.fd00-6--100"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := newFakeAllocator()
			h := newHandler(t, &fakeEvaluator{dec: tt.dec}, alloc)
			resp := h.Handle(t.Context(), tt.req)
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			got, want := sortedOps(resp.Patches), sortedOps(tt.want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("patch:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			var live []string
			for k := range alloc.live {
				live = append(live, k)
			}
			sort.Strings(live)
			if fmt.Sprint(live) != fmt.Sprint(tt.reserved) {
				t.Errorf("held allocations %v, want %v", live, tt.reserved)
			}
			var warnings []string
			if tt.warning != "" {
				warnings = []string{tt.warning}
			}
			if fmt.Sprint(resp.Warnings) != fmt.Sprint(warnings) {
				t.Errorf("warnings %q, want %q", resp.Warnings, warnings)
			}
			if len(resp.Patches) > 0 {
				checkPatchApplies(t, tt.req, resp)
			}
		})
	}
}

// checkPatchApplies applies the patch as the API server would and decodes
// the result into a Pod, whose assignment must parse.
func checkPatchApplies(t *testing.T, req admission.Request, resp admission.Response) {
	t.Helper()
	patched, err := applyPatch(req.Object.Raw, resp.Patches)
	if err != nil {
		t.Fatalf("applying the patch: %v", err)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(patched, pod); err != nil {
		t.Fatalf("patched pod does not decode: %v", err)
	}
	if v, ok := pod.Annotations[assignment.Annotation]; ok {
		if _, err := assignment.Parse(v); err != nil {
			t.Errorf("the assignment written does not parse: %v", err)
		}
	}
}

func fastInterface(iface, addr, alloc string) assignment.Interface {
	return assignment.Interface{Interface: iface, Network: "default/fast", Addresses: []assignment.Address{{Address: addr, Pool: "fast-v4", Allocation: alloc}}}
}

func fastElement(iface, addr, alloc string) nadv1.NetworkSelectionElement {
	return nadv1.NetworkSelectionElement{Name: "fast", Namespace: "default", InterfaceRequest: iface, IPRequest: []string{addr},
		CNIArgs: map[string]any{assignment.CNIArgsKey: fastInterface(iface, addr, alloc)}}
}

func rackInterface(pool, addr string) assignment.Interface {
	ip := strings.Split(addr, "/")[0]
	return assignment.Interface{Interface: "net1", Network: "default/rack", Addresses: []assignment.Address{{Address: addr, Pool: pool, Allocation: pool + "." + ip}}}
}

func rackElement(pool, addr string) nadv1.NetworkSelectionElement {
	return nadv1.NetworkSelectionElement{Name: "rack", Namespace: "default", InterfaceRequest: "net1", IPRequest: []string{addr},
		CNIArgs: map[string]any{assignment.CNIArgsKey: rackInterface(pool, addr)}}
}

func TestHandleDenials(t *testing.T) {
	storageAtt := policies.Attachment{Network: "default/storage", Interface: "net1", Policy: "annotations"}
	exhausted := &allocator.ExhaustedError{Pools: []string{"storage-v6"}, Total: 256, Allocated: 256}
	tests := []struct {
		name    string
		req     admission.Request
		dec     *policies.Decision
		evalErr error
		fail    map[string]error
		code    int32
		msg     string
		// released are allocations given back by the rollback.
		released []string
	}{{
		name: "malformed networks annotation",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: `[{"name":"storage",}]`}, "")),
		dec:  decision(),
		code: 422,
		msg:  `pod "default/web-*": annotation k8s.v1.cni.cncf.io/networks: not a JSON list of network selection elements: invalid character '}'`,
	}, {
		name: "bad interface name in the short form",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: "storage@a:b"}, "")),
		dec:  decision(),
		code: 422,
		msg:  `pod "default/web-*": annotation k8s.v1.cni.cncf.io/networks: element 0: interface of network default/storage: "a:b" contains ':', not allowed in an interface name`,
	}, {
		name: "policy denial names the policy",
		req:  request(podJSON(nil, "")),
		dec:  &policies.Decision{Denials: []policies.Denial{{Policy: "static-ips", Message: "static IPs are not allowed in namespace default"}}},
		code: 403,
		msg:  `pod "default/web-*": [static-ips] static IPs are not allowed in namespace default`,
	}, {
		name:    "policy runtime error fails closed",
		req:     request(podJSON(nil, "")),
		evalErr: errors.New(`policy "broken": eval_conflict_error: functions must not produce multiple outputs`),
		code:    500,
		msg:     `pod "default/web-*": evaluating attachment policies: policy "broken": eval_conflict_error`,
	}, {
		name: "a requested Berth network no policy grants",
		req:  request(podJSON(map[string]string{nadv1.NetworksAnnotation: "storage"}, "")),
		dec:  decision(),
		code: 403,
		msg:  `pod "default/web-*": annotation k8s.v1.cni.cncf.io/networks: element 0 requests network default/storage, which no attachment policy grants this pod`,
	}, {
		name: "unknown network in the policy output",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/nope", Policy: "p"}),
		code: 422,
		msg:  `pod "default/web-*": [p] attachment 0 (network "default/nope"): no Network or NetworkAttachmentDefinition default/nope exists`,
	}, {
		name: "a pool of the wrong family",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/storage", Policy: "p", IPv4: []string{"storage-v6"}}),
		code: 422,
		msg:  `pod "default/web-*": [p] interface net1 (network default/storage): ipv4 pool "storage-v6" from the policy is an IPv6 pool`,
	}, {
		name: "a pool not serving the network",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/storage", Policy: "p", IPv4: []string{"fast-v4"}}),
		code: 403,
		msg:  `pod "default/web-*": [p] interface net1 (network default/storage): none of the ipv4 pools [fast-v4] from the policy may serve this pod: pool "fast-v4" serves networks [fast], not default/storage`,
	}, {
		name: "no pool serves a Berth network: the other tenant's default pool does not select the pod",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/rack", Policy: "p"}),
		code: 403,
		msg: `pod "default/web-*": [p] interface net1 (network default/rack): no IP pool serves this pod: name pools in the policy or in the Network's spec.ippools, or mark a pool that selects the pod default` +
			` (default pools of the network refused: pool "tenant-b-v4" does not serve namespace "default": its spec.namespaceSelector does not select it)`,
	}, {
		name: "a pinned pod with no pool serving its node",
		req:  request(podJSON(nil, `"containers":[{"name":"app","image":"busybox"}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["node-r2"]}]}]}}}`)),
		dec:  decision(policies.Attachment{Network: "default/rack", Policy: "p", IPv4: []string{"rack1-v4"}}),
		code: 403,
		msg:  `pod "default/web-*": [p] interface net1 (network default/rack): none of the ipv4 pools [rack1-v4] from the policy may serve this pod: pool "rack1-v4" does not serve node "node-r2", to which the pod is bound (required node affinity on metadata.name)`,
	}, {
		name: "two attachments claim one interface",
		req:  request(podJSON(nil, "")),
		dec:  decision(storageAtt, policies.Attachment{Network: "default/fast", Interface: "net1", Policy: "q"}),
		code: 422,
		msg:  `pod "default/web-*": [q] attachment for network default/fast: interface "net1" is given to two attachments`,
	}, {
		name: "an exhausted pool on the second attachment releases the first",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/fast", Interface: "net1", Policy: "p"}, storageAtt2()),
		fail: map[string]error{"storage-v6": exhausted},
		code: 403,
		msg:  `pod "default/web-*": reserving addresses for interface net2 (network default/storage): no free address in pools [storage-v6] (256 of 256 allocated)`,
		// The fake rolls back storage-v4 itself (both families or neither);
		// the webhook releases net1's address.
		released: []string{"fast-v4.10.9.0.100"},
	}, {
		name: "a taken static address",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/fast", Policy: "p", StaticIPs: []string{"10.9.0.7"}}),
		fail: map[string]error{"fast-v4": &allocator.TakenError{Addr: netip.MustParseAddr("10.9.0.7"), Pool: "fast-v4", Holder: "default/db-0"}},
		code: 409,
		msg:  `pod "default/web-*": reserving addresses for interface net1 (network default/fast): address 10.9.0.7 of pool "fast-v4" is already allocated to default/db-0`,
	}, {
		name: "a static address of a family without pools",
		req:  request(podJSON(nil, "")),
		dec:  decision(policies.Attachment{Network: "default/fast", Policy: "p", StaticIPs: []string{"fd00::7"}}),
		code: 422,
		msg:  `pod "default/web-*": [p] interface net1 (network default/fast): static address fd00::7 has no pool of its family`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := newFakeAllocator()
			for k, v := range tt.fail {
				alloc.fail[k] = v
			}
			h := newHandler(t, &fakeEvaluator{dec: tt.dec, err: tt.evalErr}, alloc)
			resp := h.Handle(t.Context(), tt.req)
			if resp.Allowed {
				t.Fatalf("allowed with patch %v", resp.Patches)
			}
			if resp.Result.Code != tt.code || !strings.HasPrefix(resp.Result.Message, tt.msg) {
				t.Errorf("got %d %q\nwant %d %q", resp.Result.Code, resp.Result.Message, tt.code, tt.msg)
			}
			if len(alloc.live) != 0 {
				t.Errorf("allocations left held after a denial: %v", alloc.live)
			}
			if fmt.Sprint(alloc.released) != fmt.Sprint(tt.released) {
				t.Errorf("released %v, want %v", alloc.released, tt.released)
			}
		})
	}
}

func storageAtt2() policies.Attachment {
	return policies.Attachment{Network: "default/storage", Interface: "net2", Policy: "p"}
}

// TestPolicyInput checks what the policies see: the namespace, the
// requested networks, networks and pool summaries with selector matches.
func TestPolicyInput(t *testing.T) {
	eval := &fakeEvaluator{dec: decision()}
	h := newHandler(t, eval, newFakeAllocator())
	resp := h.Handle(t.Context(), request(podJSON(map[string]string{nadv1.NetworksAnnotation: "plain@data"}, "")))
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	in := eval.input
	if in.Namespace.Name != "default" || in.Namespace.Labels["tenant"] != "a" {
		t.Errorf("namespace %+v", in.Namespace)
	}
	if len(in.RequestedNetworks) != 1 || in.RequestedNetworks[0].Network != "default/plain" || in.RequestedNetworks[0].Interface != "data" {
		t.Errorf("requested networks %+v", in.RequestedNetworks)
	}
	if n := in.Networks["default/storage"]; !n.Berth || n.CNIType != "macvlan" || fmt.Sprint(n.IPv4Pools, n.IPv6Pools) != "[storage-v4] [storage-v6]" {
		t.Errorf("storage network %+v", n)
	}
	if n := in.Networks["default/fast"]; n.ResourceName != "berth.io/sriov_netdevice" {
		t.Errorf("fast network %+v", n)
	}
	if n := in.Networks["default/plain"]; n.Berth {
		t.Errorf("a NAD Berth did not generate is marked Berth's: %+v", n)
	}
	if p := in.Pools["tenant-b-v4"]; p.MatchesNamespace || !p.MatchesPod || p.Family != 4 {
		t.Errorf("tenant-b-v4 summary %+v", p)
	}
	if p := in.Pools["storage-v6"]; p.Family != 6 || !p.MatchesNamespace || p.Gateway != "fd00:6::1" {
		t.Errorf("storage-v6 summary %+v", p)
	}
	if p := in.Pools["rack1-v4"]; !p.NodeBound {
		t.Errorf("rack1-v4 summary %+v", p)
	}
}

func TestCoordinatorNotReady(t *testing.T) {
	notReady := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorNotReady, Reason: "no source of the cluster's pod CIDRs found"}}
	alloc := newFakeAllocator()
	h := newHandler(t, &fakeEvaluator{dec: decision(policies.Attachment{Network: "default/storage", Interface: "net1", Policy: "p"})}, alloc, notReady)
	resp := h.Handle(t.Context(), request(podJSON(nil, "")))
	want := `pod "default/web-*": networks [default/storage] route through berth-coordinator: Coordinator "default" is not ready, so the cluster's pod and service CIDRs berth-coordinator routes are unknown: no source of the cluster's pod CIDRs found`
	if resp.Allowed || resp.Result.Code != 503 || resp.Result.Message != want {
		t.Fatalf("got allowed=%v %+v\nwant 503 %q", resp.Allowed, resp.Result, want)
	}
	if len(alloc.requests) != 0 {
		t.Errorf("reserved before checking the Coordinator: %v", alloc.requests)
	}
	// A NetworkAttachmentDefinition Berth did not generate needs no coordinator.
	h = newHandler(t, &fakeEvaluator{dec: decision(policies.Attachment{Network: "default/plain", Interface: "net1", Policy: "p"})}, alloc, notReady)
	if resp := h.Handle(t.Context(), request(podJSON(nil, ""))); !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
}

// TestCoordinatorNotReadyWithoutAttachment: a network Berth reserves
// nothing for (a custom Network with an IPAM of its own) gets no
// attachment, but its NAD chains berth-coordinator all the same: a pod
// asking for it waits for the Coordinator like any other. Whether the chain
// has berth-coordinator is read from the NAD's config, or, before the NAD is
// written, from the Network.
func TestCoordinatorNotReadyWithoutAttachment(t *testing.T) {
	notReady := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorNotReady, Reason: "no pod CIDRs"}}
	own := customNetwork("own", ownIPAMConfig, nil)
	noCoord := customNetwork("own", ownIPAMConfig, func(nw *berthv1.Network) {
		nw.Spec.Coordinator = &berthv1.NetworkCoordinator{Disabled: true}
	})
	// What the controller renders for noCoord: no berth-coordinator.
	noCoordConfig := `{"cniVersion":"1.0.0","name":"own","plugins":[{"type":"macvlan","master":"eth1","ipam":{"type":"host-local","subnet":"10.1.1.0/24"}}]}`
	disabledConfig := `{"cniVersion":"1.0.0","name":"own","plugins":[{"type":"macvlan","ipam":{}},{"type":"berth-coordinator","mode":"disabled"}]}`
	tests := []struct {
		name    string
		objs    []client.Object
		ann     map[string]string
		refused string // "": admitted
	}{{
		name:    "its NAD chains berth-coordinator",
		objs:    []client.Object{own, ownedNAD("own", "own", ownIPAMConfig)},
		ann:     map[string]string{nadv1.NetworksAnnotation: "own"},
		refused: "networks [default/own] route through berth-coordinator",
	}, {
		name:    "as the default network",
		objs:    []client.Object{own, ownedNAD("own", "own", ownIPAMConfig)},
		ann:     map[string]string{nadv1.DefaultNetworkAnnotation: "own"},
		refused: "networks [default/own] route through berth-coordinator",
	}, {
		name:    "its NAD is not written yet",
		objs:    []client.Object{own},
		ann:     map[string]string{nadv1.NetworksAnnotation: "own"},
		refused: "networks [default/own] route through berth-coordinator",
	}, {
		name: "its NAD has no berth-coordinator",
		objs: []client.Object{noCoord, ownedNAD("own", "own", noCoordConfig)},
		ann:  map[string]string{nadv1.NetworksAnnotation: "own"},
	}, {
		name: "its NAD runs berth-coordinator in mode disabled",
		objs: []client.Object{own, ownedNAD("own", "own", disabledConfig)},
		ann:  map[string]string{nadv1.NetworksAnnotation: "own"},
	}, {
		name: "the Network leaves berth-coordinator out and its NAD is not written yet",
		objs: []client.Object{noCoord},
		ann:  map[string]string{nadv1.NetworksAnnotation: "own"},
	}, {
		// Its berth-coordinator routes what its author wrote.
		name: "a hand-written NAD chaining berth-coordinator",
		objs: []client.Object{&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "default"},
			Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: ownIPAMConfig}}},
		ann: map[string]string{nadv1.NetworksAnnotation: "mine"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := newFakeAllocator()
			h := newHandler(t, shippedEngine(t), alloc, append(tt.objs, notReady)...)
			resp := h.Handle(t.Context(), request(podJSON(tt.ann, "")))
			if tt.refused == "" {
				if !resp.Allowed {
					t.Fatalf("denied: %+v", resp.Result)
				}
				return
			}
			if resp.Allowed || resp.Result.Code != 503 || !strings.Contains(resp.Result.Message, tt.refused) {
				t.Fatalf("got allowed=%v %+v, want 503 containing %q", resp.Allowed, resp.Result, tt.refused)
			}
		})
	}
}

func TestChainsCoordinator(t *testing.T) {
	for _, tt := range []struct {
		config string
		chains bool
		err    bool
	}{
		{berthConfig, true, false},
		{ownIPAMConfig, true, false},
		{`{"type":"berth-coordinator"}`, true, false},
		{`{"type":"macvlan","ipam":{"type":"berth-ipam"}}`, false, false},
		{`{"plugins":[{"type":"macvlan"},{"type":"berth-coordinator","mode":"disabled"}]}`, false, false},
		{`{"plugins":[{"type":"macvlan"},{"type":"berth-coordinator","mode":"underlay"}]}`, true, false},
		{``, false, true},
		{`null`, false, true},
	} {
		ps, err := parsePlugins(tt.config)
		chains := ps.chainsCoordinator()
		if chains != tt.chains || (err != nil) != tt.err {
			t.Errorf("%s: chains %v, error %v; want %v, error %v", tt.config, chains, err, tt.chains, tt.err)
		}
	}
}
