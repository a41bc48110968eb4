package policies

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// cluster is a small cluster of two tenants, as the webhook would describe
// it to the policies.
type cluster struct {
	namespaces map[string]*corev1.Namespace
	pools      []*berthv1.IPPool
	networks   map[string]NetworkSummary
}

func testCluster() *cluster {
	tenantSel := func(tenant string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": tenant}}
	}
	pool := func(name, subnet string, def bool, ns *metav1.LabelSelector) *berthv1.IPPool {
		return &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1.IPPoolSpec{Subnet: subnet, Default: def, NamespaceSelector: ns}}
	}
	return &cluster{
		namespaces: map[string]*corev1.Namespace{
			"team-a": {ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tenant": "a"}}},
			"team-b": {ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"tenant": "b"}}},
		},
		pools: []*berthv1.IPPool{
			pool("storage-v4", "10.6.0.0/16", true, nil),
			pool("storage-v6", "fd00:6::/64", true, nil),
			pool("tenant-a-v4", "10.7.0.0/24", false, tenantSel("a")),
			pool("tenant-b-v4", "10.7.1.0/24", false, tenantSel("b")),
		},
		networks: map[string]NetworkSummary{
			"team-a/storage": {Namespace: "team-a", Name: "storage", Berth: true},
			"team-a/mgmt":    {Namespace: "team-a", Name: "mgmt", Berth: true},
			"team-b/storage": {Namespace: "team-b", Name: "storage", Berth: true},
		},
	}
}

// input builds the policy input for pod the way the webhook does, with the
// exported helpers.
func (c *cluster) input(t testing.TB, pod *corev1.Pod) *Input {
	t.Helper()
	ns := c.namespaces[pod.Namespace]
	in := &Input{
		Operation: "CREATE",
		Pod:       pod,
		Namespace: Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations},
		Networks:  c.networks,
		Pools:     map[string]PoolSummary{},
	}
	for _, p := range c.pools {
		family := 4
		if strings.Contains(p.Spec.Subnet, ":") {
			family = 6
		}
		matchNS, matchPod, err := PoolSelects(p, ns.Labels, pod.Labels)
		if err != nil {
			t.Fatal(err)
		}
		in.Pools[p.Name] = PoolSummary{Name: p.Name, Family: family, Subnet: p.Spec.Subnet, Default: p.Spec.Default, MatchesNamespace: matchNS, MatchesPod: matchPod, Total: 100, Free: 90}
	}
	var err error
	if in.RequestedNetworks, err = RequestedNetworksOf(pod); err != nil {
		t.Fatal(err)
	}
	return in
}

func testPod(ns string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: ns, Labels: map[string]string{"app": "web"}, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// TestShippedSet runs whole pods through the engine with every shipped
// policy: the decisions the webhook gets for the cases the issue names.
func TestShippedSet(t *testing.T) {
	sources, err := ShippedSources(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{}, sources...)
	tests := []struct {
		name        string
		ns          string
		nsLabels    map[string]string
		nsAnnots    map[string]string
		annotations map[string]string
		want        string // attachments as network/interface:v4|v6|static, with * for the default route
		wantDenials []string
	}{
		{
			name:        "plain Multus request: the network's pools are left to the webhook",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage"},
			want:        "team-a/storage/net1:||",
		},
		{
			name:        "Berth annotations",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage, mgmt", "berth.io/ippools": `[{"interface":"net2","ipv4":["tenant-a-v4"]}]`, "berth.io/default-route-nic": "net2"},
			want:        "team-a/storage/net1:|| team-a/mgmt/net2*:tenant-a-v4||",
		},
		{
			name:        "Spiderpool annotations, unchanged",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: `[{"name":"storage","namespace":"team-a"}]`, "ipam.spidernet.io/ippool": `{"ipv4":["storage-v4"],"ipv6":["storage-v6"]}`},
			want:        "team-a/storage/net1:storage-v4|storage-v6|",
		},
		{
			name:        "Berth annotation wins over Spiderpool's for one interface",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "ipam.spidernet.io/ippool": `{"ipv4":["storage-v4"]}`, "berth.io/ippool": `{"ipv6":["storage-v6"]}`},
			want:        "team-a/storage/net1:|storage-v6|",
		},
		{
			name:     "namespace default networks and pools",
			ns:       "team-a",
			nsAnnots: map[string]string{"berth.io/default-networks": "storage, mgmt", "berth.io/default-ippools": `{"ipv4":["storage-v4"]}`},
			want:     "team-a/storage/net1:storage-v4|| team-a/mgmt/net2:storage-v4||",
		},
		{
			name:        "pod annotation wins over namespace default pools",
			ns:          "team-a",
			nsAnnots:    map[string]string{"berth.io/default-ippools": `{"ipv4":["storage-v4"]}`},
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "berth.io/ippool": `{"ipv4":["tenant-a-v4"]}`},
			want:        "team-a/storage/net1:tenant-a-v4||",
		},
		{
			name:        "static address where allowed",
			ns:          "team-a",
			nsLabels:    map[string]string{"berth.io/static-ips": "true"},
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "berth.io/static-ips": `{"net1":["10.6.212.150"]}`},
			want:        "team-a/storage/net1:||10.6.212.150",
		},
		{
			name:        "static address where not allowed",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "berth.io/static-ips": `{"net1":["10.6.212.150"]}`},
			want:        "team-a/storage/net1:||10.6.212.150",
			wantDenials: []string{`[berth/static-ips] berth.io/static-ips: static addresses are not allowed in namespace "team-a" (an administrator allows them with the namespace label berth.io/static-ips=true)`},
		},
		{
			name:        "another tenant's pool",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "berth.io/ippool": `{"ipv4":["tenant-b-v4"]}`},
			want:        "team-a/storage/net1:tenant-b-v4||",
			wantDenials: []string{`[berth/pool-selectors] interface net1: IPPool "tenant-b-v4" does not serve namespace "team-a": its namespaceSelector does not match the namespace's labels`},
		},
		{
			name:        "malformed annotation",
			ns:          "team-a",
			annotations: map[string]string{nadv1.NetworksAnnotation: "storage", "berth.io/ippool": `{"ipv4":"storage-v4"}`},
			want:        "team-a/storage/net1:||",
			wantDenials: []string{"[berth/annotations] berth.io/ippool: ipv4: must be a list of IPPool names"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			ns := c.namespaces[tt.ns]
			for k, v := range tt.nsLabels {
				ns.Labels[k] = v
			}
			ns.Annotations = tt.nsAnnots
			dec, err := e.Evaluate(t.Context(), c.input(t, testPod(tt.ns, tt.annotations)))
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(dec); got != tt.want {
				t.Errorf("attachments: got %q, want %q", got, tt.want)
			}
			var denials []string
			for _, d := range dec.Denials {
				denials = append(denials, fmt.Sprintf("[%s] %s", d.Policy, d.Message))
			}
			if fmt.Sprint(denials) != fmt.Sprint(tt.wantDenials) {
				t.Errorf("denials:\n got %q\nwant %q", denials, tt.wantDenials)
			}
		})
	}
}

func summary(dec *Decision) string {
	var parts []string
	for _, a := range dec.Attachments {
		route := ""
		if a.DefaultRoute {
			route = "*"
		}
		parts = append(parts, fmt.Sprintf("%s/%s%s:%s|%s|%s", a.Network, a.Interface, route,
			strings.Join(a.IPv4, ","), strings.Join(a.IPv6, ","), strings.Join(a.StaticIPs, ",")))
	}
	return strings.Join(parts, " ")
}

// BenchmarkEvaluateShipped measures one admission's policy evaluation with
// the shipped set for a typical pod: two requested networks, Berth pool
// annotations, a default-route NIC, four pools. The baseline is the same
// input with an empty policy set (input encoding and merging only).
func BenchmarkEvaluateShipped(b *testing.B) {
	c := testCluster()
	pod := testPod("team-a", map[string]string{
		nadv1.NetworksAnnotation:     "storage, mgmt",
		"berth.io/ippools":           `[{"interface":"net1","ipv4":["storage-v4"],"ipv6":["storage-v6"]},{"interface":"net2","ipv4":["tenant-a-v4"]}]`,
		"berth.io/default-route-nic": "net2",
	})
	in := c.input(b, pod)
	sources, err := ShippedSources(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		sources []Source
	}{{"baseline-empty-set", []Source{}}, {"shipped", sources}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, Options{}, bc.sources...)
			dec, err := e.Evaluate(b.Context(), in)
			if err != nil {
				b.Fatal(err)
			}
			if len(dec.Denials) > 0 {
				b.Fatalf("denied: %+v", dec.Denials)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(b.Context(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
