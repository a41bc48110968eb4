package poolvalidator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/allocator"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func pool(name, subnet string, edit func(*berthv1.IPPoolSpec)) *berthv1.IPPool {
	p := &berthv1.IPPool{TypeMeta: metav1.TypeMeta{APIVersion: "berth.io/v1alpha1", Kind: "IPPool"}, ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet}}
	if edit != nil {
		edit(&p.Spec)
	}
	return p
}

func alloc(pool, ip, pod string) *berthv1.IPAllocation {
	a := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName(pool, netip.MustParseAddr(ip))},
		Spec: berthv1.IPAllocationSpec{Pool: pool, IP: ip, Phase: berthv1.AllocationBound}}
	if pod != "" {
		a.Spec.PodRef = &berthv1.PodReference{Namespace: "default", Name: pod}
	}
	return a
}

func newValidator(t *testing.T, objs ...client.Object) *Validator {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{berthv1.AddToScheme, nadv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithIndex(&berthv1.IPAllocation{}, allocator.PoolField, func(o client.Object) []string { return []string{o.(*berthv1.IPAllocation).Spec.Pool} }).
		Build()
	return New(c, c, s, nil)
}

func raw(obj any) runtime.RawExtension {
	data, _ := json.Marshal(obj)
	return runtime.RawExtension{Raw: data}
}

func TestCreateAndUpdate(t *testing.T) {
	existing := []client.Object{
		pool("storage-v4", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.100-10.6.212.200"}
			s.ExcludeIPs = []string{"10.6.212.150"}
			s.Gateway = ptr.To("10.6.0.1")
			s.Networks = []string{"storage"}
		}),
		pool("other-net", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.1.0-10.6.1.255"}
			s.Networks = []string{"default/backup"}
		}),
		alloc("storage-v4", "10.6.212.101", "web-1"),
		alloc("storage-v4", "10.6.212.199", "web-2"),
		// The Network apps/blue generates the NAD apps/blue-nad
		// (berth.io/nad-name) and still controls its old NAD apps/blue-old;
		// pods name the NADs, and a pool may name the Network or a NAD.
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "blue", Annotations: map[string]string{"berth.io/nad-name": "blue-nad"}}},
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "blue-old", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "berth.io/v1alpha1", Kind: "Network", Name: "blue", UID: "u1", Controller: ptr.To(true)},
		}}},
		pool("blue-v4", "10.7.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.7.0.10-10.7.0.50"}
			s.Networks = []string{"apps/blue"}
		}),
	}
	tests := []struct {
		name string
		op   admissionv1.Operation
		pool *berthv1.IPPool
		code int32
		msg  string // empty: allowed
	}{{
		name: "a disjoint range of the same network",
		op:   admissionv1.Create,
		pool: pool("storage-v4b", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.213.0-10.6.213.255"}
			s.Networks = []string{"storage"}
		}),
	}, {
		name: "the excluded address of another pool may be handed out",
		op:   admissionv1.Create,
		pool: pool("single", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.150"}
			s.Networks = []string{"default/storage"}
		}),
	}, {
		name: "an overlapping range of another network",
		op:   admissionv1.Create,
		pool: pool("elsewhere", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.0-10.6.212.255"}
			s.Networks = []string{"other"}
		}),
	}, {
		name: "an overlapping range of the same network (namespace/name against a bare name)",
		op:   admissionv1.Create,
		pool: pool("clash", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.140-10.6.212.160"}
			s.Networks = []string{"default/storage"}
		}),
		code: 422,
		msg:  `ippool "clash": spec.ips: addresses 10.6.212.140-10.6.212.149 are also handed out by ippool "storage-v4", which serves the same networks ([default/storage] and [storage]); two pools must not share addresses`,
	}, {
		name: "a pool serving every network overlaps everything",
		op:   admissionv1.Create,
		pool: pool("any", "10.6.1.0/24", nil),
		code: 422,
		msg:  `ippool "any": spec.ips: addresses 10.6.1.0-10.6.1.255 are also handed out by ippool "other-net", which serves the same networks (every network and [default/backup]); two pools must not share addresses`,
	}, {
		name: "another pool's gateway may not be handed out",
		op:   admissionv1.Create,
		pool: pool("gw", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) { s.IPs = []string{"10.6.0.1-10.6.0.9"}; s.Networks = []string{"storage"} }),
		code: 422,
		msg:  `ippool "gw": spec.ips: address 10.6.0.1 is the gateway of ippool "storage-v4", which serves the same networks ([storage] and [storage])`,
	}, {
		name: "a pool naming the NAD of the Network another pool names",
		op:   admissionv1.Create,
		pool: pool("blue-nad-v4", "10.7.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.7.0.40-10.7.0.60"}
			s.Networks = []string{"apps/blue-nad"}
		}),
		code: 422,
		msg:  `ippool "blue-nad-v4": spec.ips: addresses 10.7.0.40-10.7.0.50 are also handed out by ippool "blue-v4", which serves the same networks ([apps/blue-nad] and [apps/blue]: both name Network apps/blue, whose NetworkAttachmentDefinition is apps/blue-nad); two pools must not share addresses`,
	}, {
		name: "a pool naming that NAD by its bare name",
		op:   admissionv1.Create,
		pool: pool("blue-bare-v4", "10.7.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.7.0.50"}
			s.Networks = []string{"blue-nad"}
		}),
		code: 422,
		msg:  `ippool "blue-bare-v4": spec.ips: addresses 10.7.0.50 are also handed out by ippool "blue-v4", which serves the same networks ([blue-nad] and [apps/blue]: both name Network apps/blue, whose NetworkAttachmentDefinition is apps/blue-nad); two pools must not share addresses`,
	}, {
		name: "a pool naming an old NAD the Network still controls",
		op:   admissionv1.Create,
		pool: pool("blue-old-v4", "10.7.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.7.0.10"}
			s.Networks = []string{"apps/blue-old"}
		}),
		code: 422,
		msg:  `ippool "blue-old-v4": spec.ips: addresses 10.7.0.10 are also handed out by ippool "blue-v4", which serves the same networks ([apps/blue-old] and [apps/blue]: both name Network apps/blue, whose NetworkAttachmentDefinition is apps/blue-old); two pools must not share addresses`,
	}, {
		name: "a pool naming another namespace's NAD of that name",
		op:   admissionv1.Create,
		pool: pool("other-blue-v4", "10.7.0.0/24", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.7.0.10-10.7.0.50"}
			s.Networks = []string{"other/blue-nad"}
		}),
	}, {
		name: "a range whose first address is after its last",
		op:   admissionv1.Create,
		pool: pool("backwards", "10.9.0.0/16", func(s *berthv1.IPPoolSpec) { s.IPs = []string{"10.9.0.9-10.9.0.1"} }),
		code: 422,
		msg:  `ippool "backwards": spec.ips[0]: "10.9.0.9-10.9.0.1": first address is after the last`,
	}, {
		name: "growing a pool in use",
		op:   admissionv1.Update,
		pool: pool("storage-v4", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.100-10.6.212.210"}
			s.Gateway = ptr.To("10.6.0.1")
			s.Networks = []string{"storage"}
		}),
	}, {
		name: "shrinking below addresses in use",
		op:   admissionv1.Update,
		pool: pool("storage-v4", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.100-10.6.212.150"}
			s.Gateway = ptr.To("10.6.0.1")
			s.Networks = []string{"storage"}
		}),
		code: 422,
		msg:  `ippool "storage-v4": spec: the new ips, excludeIPs and gateway leave out 1 addresses in use: 10.6.212.199 (pod default/web-2); release them first`,
	}, {
		name: "excluding an address in use",
		op:   admissionv1.Update,
		pool: pool("storage-v4", "10.6.0.0/16", func(s *berthv1.IPPoolSpec) {
			s.IPs = []string{"10.6.212.100-10.6.212.200"}
			s.ExcludeIPs = []string{"10.6.212.101", "10.6.212.199"}
			s.Networks = []string{"storage"}
		}),
		code: 422,
		msg:  `ippool "storage-v4": spec: the new ips, excludeIPs and gateway leave out 2 addresses in use: 10.6.212.101 (pod default/web-1), 10.6.212.199 (pod default/web-2); release them first`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newValidator(t, existing...)
			resp := v.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: tt.op, Name: tt.pool.Name, Object: raw(tt.pool)}})
			if tt.msg == "" {
				if !resp.Allowed {
					t.Fatalf("denied: %s", resp.Result.Message)
				}
				return
			}
			if resp.Allowed || resp.Result.Code != tt.code || resp.Result.Message != tt.msg {
				t.Fatalf("got allowed=%v %+v\nwant %d %q", resp.Allowed, resp.Result, tt.code, tt.msg)
			}
		})
	}
}

// TestSharedNetwork: two spec.networks lists share a network when a pod of
// some network could be served by both, as the pod webhook decides it.
func TestSharedNetwork(t *testing.T) {
	// Network a/blue generates NAD a/blue-nad; Network a/red generates NAD
	// a/blue, the name of the other Network.
	known := [][]string{{"a/blue", "a/red"}, {"a/blue-nad", "a/blue"}}
	tests := []struct {
		a, b   []string
		shared bool
		via    string
	}{
		{nil, []string{"x/y"}, true, ""},
		{[]string{"x"}, []string{"x"}, true, ""},
		{[]string{"x"}, []string{"n/x"}, true, ""},
		{[]string{"n/x"}, []string{"m/x"}, false, ""},
		{[]string{"a/blue"}, []string{"blue-nad"}, true, "a/blue-nad"},
		{[]string{"red"}, []string{"a/blue"}, true, "a/blue"},
		// a/red serves the pods of NAD a/blue, a/blue-nad those of NAD
		// a/blue-nad: no pod is served by both.
		{[]string{"a/red"}, []string{"a/blue-nad"}, false, ""},
		{[]string{"b/blue"}, []string{"a/blue-nad"}, false, ""},
	}
	for _, tt := range tests {
		via, shared := sharedNetwork(tt.a, tt.b, known)
		if shared != tt.shared || (tt.via != "") != (via != "") || !strings.Contains(via, tt.via) {
			t.Errorf("%v and %v: shared %v (%q), want %v (via %s)", tt.a, tt.b, shared, via, tt.shared, tt.via)
		}
	}
}

func TestDelete(t *testing.T) {
	objs := []client.Object{pool("busy", "10.6.0.0/24", nil), pool("idle", "10.7.0.0/24", nil)}
	for i := range 7 {
		objs = append(objs, alloc("busy", fmt.Sprintf("10.6.0.%d", 10+i), fmt.Sprintf("web-%d", i%6)))
	}
	objs = append(objs, alloc("busy", "10.6.0.99", ""))
	v := newValidator(t, objs...)
	resp := v.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Delete, Name: "idle"}})
	if !resp.Allowed {
		t.Fatalf("deleting an idle pool denied: %s", resp.Result.Message)
	}
	resp = v.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Delete, Name: "busy"}})
	want := `ippool "busy" still has 8 allocated address(es), held by default/web-0, default/web-1, default/web-2, default/web-3, default/web-4 and 1 more pod(s): delete those pods (or scale their StatefulSets down) first`
	if resp.Allowed || resp.Result.Code != 409 || resp.Result.Message != want {
		t.Fatalf("got allowed=%v %+v\nwant 409 %q", resp.Allowed, resp.Result, want)
	}
}

func TestSpans(t *testing.T) {
	tests := []struct {
		name     string
		a, b     berthv1.IPPoolSpec
		overlaps string
	}{
		{"adjacent ranges", berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.1-10.0.0.9"}}, berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.10-10.0.0.20"}}, ""},
		{"one shared address", berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.1-10.0.0.10"}}, berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.10-10.0.0.20"}}, "10.0.0.10"},
		{"exclusions carve a hole", berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", ExcludeIPs: []string{"10.0.0.100-10.0.0.199"}}, berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.120-10.0.0.130"}}, ""},
		{"whole subnets of different sizes", berthv1.IPPoolSpec{Subnet: "10.0.0.0/16"}, berthv1.IPPoolSpec{Subnet: "10.0.3.0/24"}, "10.0.3.0-10.0.3.255"},
		{"IPv6", berthv1.IPPoolSpec{Subnet: "fd00::/64", IPs: []string{"fd00::100-fd00::1ff"}}, berthv1.IPPoolSpec{Subnet: "fd00::/64", IPs: []string{"fd00::1f0-fd00::2ff"}}, "fd00::1f0-fd00::1ff"},
		{"families never overlap", berthv1.IPPoolSpec{Subnet: "0.0.0.0/0"}, berthv1.IPPoolSpec{Subnet: "::/0"}, ""},
		{"the last address of the space", berthv1.IPPoolSpec{Subnet: "255.255.255.0/24"}, berthv1.IPPoolSpec{Subnet: "255.255.255.255/32"}, "255.255.255.255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := handedOut(&tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := handedOut(&tt.b)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if s, ok := overlap(a, b); ok {
				got = s.String()
			}
			if got != tt.overlaps {
				t.Errorf("overlap %q, want %q", got, tt.overlaps)
			}
		})
	}
}

// FuzzHandedOut checks the span arithmetic against a per-address model on
// small IPv4 pools: every address is in the spans iff it is in some range
// of ips (or the subnet) and in no range of excludeIPs.
func FuzzHandedOut(f *testing.F) {
	f.Add("10.0.0.0/28", "10.0.0.1-10.0.0.9,10.0.0.12", "10.0.0.3-10.0.0.4")
	f.Add("10.0.0.0/28", "", "10.0.0.0-10.0.0.15")
	f.Add("10.0.0.0/28", "10.0.0.5-10.0.0.1", "")
	f.Add("10.0.0.0/28", "10.0.0.2-10.0.0.6,10.0.0.4-10.0.0.9", "10.0.0.9")
	f.Fuzz(func(t *testing.T, subnet, ips, excludes string) {
		prefix, err := netip.ParsePrefix(subnet)
		if err != nil || !prefix.Addr().Is4() || prefix.Bits() < 24 {
			return
		}
		spec := berthv1.IPPoolSpec{Subnet: prefix.Masked().String()}
		if ips != "" {
			spec.IPs = strings.Split(ips, ",")
		}
		if excludes != "" {
			spec.ExcludeIPs = strings.Split(excludes, ",")
		}
		spans, err := handedOut(&spec)
		if err != nil {
			return
		}
		in := func(list []string, a netip.Addr) bool {
			for _, r := range list {
				first, last, _ := strings.Cut(r, "-")
				if last == "" {
					last = first
				}
				f, l := netip.MustParseAddr(strings.TrimSpace(first)), netip.MustParseAddr(strings.TrimSpace(last))
				if f.Compare(a) <= 0 && a.Compare(l) <= 0 {
					return true
				}
			}
			return false
		}
		for a := prefix.Masked().Addr(); prefix.Contains(a); a = a.Next() {
			want := (len(spec.IPs) == 0 || in(spec.IPs, a)) && !in(spec.ExcludeIPs, a)
			if got := contains(spans, a.String()); got != want {
				t.Fatalf("%s: in spans %v = %v, want %v", a, spans, got, want)
			}
		}
		for i := 1; i < len(spans); i++ {
			if spans[i-1].last.Next().Compare(spans[i].first) >= 0 {
				t.Fatalf("spans not sorted and disjoint: %v", spans)
			}
		}
	})
}
