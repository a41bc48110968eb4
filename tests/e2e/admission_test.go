package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// webhookDenied is how the API server reports the pod webhook's refusal.
const webhookDenied = `admission webhook "pods.berth.io" denied the request: `

// tenant sets up a namespace with one network and its pool, the ground of
// most tests below.
func tenant(t *testing.T, ns, subnet, first, last string, labels map[string]string) (pool string) {
	t.Helper()
	namespace(t, ns, labels, nil)
	pool = ns + "-v4"
	create(t, ippool(pool, subnet, []string{first + "-" + last}, func(s *berthv1.IPPoolSpec) {
		s.Networks = []string{ns + "/net"}
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	}))
	create(t, macvlan(ns, "net", []string{pool}, nil))
	waitNAD(t, ns, "net")
	return pool
}

func TestNamespaceDefaults(t *testing.T) {
	start(t)
	pool := tenant(t, "nsdefaults", "10.22.0.0/24", "10.22.0.10", "10.22.0.20", nil)
	create(t, ippool("nsdefaults-alt", "10.22.1.0/24", []string{"10.22.1.10-10.22.1.20"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"nsdefaults/net"} }))
	ns := &corev1.Namespace{}
	ctx := ctxFor(t, 30*time.Second)
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "nsdefaults"}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Annotations = map[string]string{assignment.DefaultNetworksAnnotation: "net@data0", assignment.DefaultIPPoolsAnnotation: `{"ipv4":["nsdefaults-alt"]}`}
	if err := cp.Client.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	// The namespace cache follows the update within moments.
	var p *corev1.Pod
	if err := poll(ctx, func() (bool, error) {
		p = pod("nsdefaults", fmt.Sprintf("plain-%d", time.Now().UnixNano()), nil, nil)
		if err := cp.Client.Create(ctx, p); err != nil {
			return false, err
		}
		_, ok := p.Annotations[assignment.Annotation]
		return ok, nil
	}); err != nil {
		t.Fatalf("no pod got the namespace's default network: %v", err)
	}
	addr := address(t, assignmentOf(t, p), "data0", 4)
	if addr.Pool != "nsdefaults-alt" {
		t.Errorf("default pool: got %s, want nsdefaults-alt (not %s)", addr.Pool, pool)
	}
}

func TestSpiderpoolAnnotations(t *testing.T) {
	start(t)
	tenant(t, "spider", "10.23.0.0/24", "10.23.0.10", "10.23.0.20", nil)
	create(t, ippool("spider-b", "10.23.1.0/24", []string{"10.23.1.10-10.23.1.20"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"spider/net"} }))
	for _, tt := range []struct{ name, key, value string }{
		{"current", "ipam.spidernet.io/ippools", `[{"interface":"net1","ipv4":["spider-b"]}]`},
		{"single", "ipam.spidernet.io/ippool", `{"ipv4":["spider-b"]}`},
		{"oldest", "ipam.spidernet.io/ippool", `{"interface":"net1","ipv4pool":"spider-b"}`},
	} {
		p := pod("spider", tt.name, map[string]string{nadv1.NetworksAnnotation: "net", tt.key: tt.value}, nil)
		create(t, p)
		if got := address(t, assignmentOf(t, p), "net1", 4).Pool; got != "spider-b" {
			t.Errorf("%s form %s: pool %s, want spider-b", tt.name, tt.value, got)
		}
	}
}

func TestStaticIPs(t *testing.T) {
	start(t)
	tenant(t, "static-ok", "10.24.0.0/24", "10.24.0.10", "10.24.0.20", map[string]string{"berth.io/static-ips": "true"})
	tenant(t, "static-no", "10.24.1.0/24", "10.24.1.10", "10.24.1.20", nil)
	p := pod("static-ok", "fixed", map[string]string{nadv1.NetworksAnnotation: "net", assignment.StaticIPsAnnotation: `{"net1":["10.24.0.15"]}`}, nil)
	create(t, p)
	if got := address(t, assignmentOf(t, p), "net1", 4).Address; got != "10.24.0.15/24" {
		t.Fatalf("static address: got %s", got)
	}
	denied(t, pod("static-ok", "taken", map[string]string{nadv1.NetworksAnnotation: "net", assignment.StaticIPsAnnotation: `{"net1":["10.24.0.15"]}`}, nil),
		`address 10.24.0.15 of pool "static-ok-v4" is already allocated to static-ok/fixed`)
	denied(t, pod("static-no", "fixed", map[string]string{nadv1.NetworksAnnotation: "net", assignment.StaticIPsAnnotation: `{"net1":["10.24.1.15"]}`}, nil),
		webhookDenied+`pod "static-no/fixed": [berth/static-ips] berth.io/static-ips: static addresses are not allowed in namespace "static-no"`)
}

func TestOtherTenantsPoolDenied(t *testing.T) {
	start(t)
	tenant(t, "tenant-a", "10.25.0.0/24", "10.25.0.10", "10.25.0.20", nil)
	tenant(t, "tenant-b", "10.25.1.0/24", "10.25.1.10", "10.25.1.20", nil)
	create(t, macvlan("tenant-a", "shared", nil, nil))
	denied(t, pod("tenant-a", "thief", map[string]string{nadv1.NetworksAnnotation: "net", assignment.IPPoolAnnotation: `{"ipv4":["tenant-b-v4"]}`}, nil),
		`IPPool "tenant-b-v4" does not serve namespace "tenant-a": its namespaceSelector does not match the namespace's labels`)
}

func TestExhaustedPoolDenied(t *testing.T) {
	start(t)
	pool := tenant(t, "tiny", "10.26.0.0/24", "10.26.0.10", "10.26.0.11", nil)
	for i := range 2 {
		create(t, pod("tiny", fmt.Sprintf("p%d", i), map[string]string{nadv1.NetworksAnnotation: "net"}, nil))
	}
	denied(t, pod("tiny", "p2", map[string]string{nadv1.NetworksAnnotation: "net"}, nil),
		webhookDenied+`pod "tiny/p2": reserving addresses for interface net1 (network tiny/net): no free address in pools [`+pool+`]`)
	if n := len(allocations(t, pool)); n != 2 {
		t.Errorf("%d allocations after the refusal, want 2", n)
	}
}

func TestMalformedAnnotationsDenied(t *testing.T) {
	start(t)
	tenant(t, "malformed", "10.27.0.0/24", "10.27.0.10", "10.27.0.20", nil)
	for _, tt := range []struct{ key, value, want string }{
		{nadv1.NetworksAnnotation, `[{"name":"net",}]`, `annotation k8s.v1.cni.cncf.io/networks: not a JSON list of network selection elements`},
		{nadv1.NetworksAnnotation, `net@bad/name`, `annotation k8s.v1.cni.cncf.io/networks: element 0`},
		{assignment.IPPoolAnnotation, `{"ipv4":"not-a-list"}`, `berth.io/ippool`},
		{assignment.IPPoolsAnnotation, `not json`, `berth.io/ippools`},
	} {
		ann := map[string]string{tt.key: tt.value}
		if tt.key != nadv1.NetworksAnnotation {
			ann[nadv1.NetworksAnnotation] = "net"
		}
		denied(t, pod("malformed", "bad", ann, nil), tt.want)
	}
	if n := len(allocations(t, "malformed-v4")); n != 0 {
		t.Errorf("%d allocations left by refused pods", n)
	}
}

// A forged assignment is overwritten at CREATE; changing it afterwards is
// refused, through the pod and through pods/status.
func TestForgedAssignment(t *testing.T) {
	start(t)
	tenant(t, "forge", "10.28.0.0/24", "10.28.0.10", "10.28.0.20", nil)
	forged := `{"interfaces":[{"interface":"net1","network":"forge/net","addresses":[{"address":"10.28.0.99/24","pool":"forge-v4","allocation":"x"}]}]}`
	p := pod("forge", "p", map[string]string{nadv1.NetworksAnnotation: "net", assignment.Annotation: forged}, nil)
	create(t, p)
	if got := address(t, assignmentOf(t, p), "net1", 4).Address; got == "10.28.0.99/24" {
		t.Fatal("the forged assignment survived CREATE")
	}
	ctx := ctxFor(t, 30*time.Second)
	// The scheduler and the allocator's controller update the pod too:
	// retry a conflict, never the denial.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Annotations[assignment.Annotation] = forged
		return cp.Client.Update(ctx, p)
	})
	want := `admission webhook "pods.validate.berth.io" denied the request: pod "forge/p": metadata.annotations[berth.io/assignment]: set by Berth at creation and immutable`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("update: %v\nwant %s", err, want)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Annotations[nadv1.NetworksAnnotation] = "net"
		return cp.Client.Status().Update(ctx, p)
	})
	if err == nil || !strings.Contains(err.Error(), "(through status)") {
		t.Fatalf("status update changing the networks annotation: %v", err)
	}
	// Other annotations stay free to change, without calling Berth.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Annotations["team"] = "storage"
		return cp.Client.Update(ctx, p)
	})
	if err != nil {
		t.Fatalf("updating another annotation: %v", err)
	}
}

func TestSRIOVResource(t *testing.T) {
	start(t)
	namespace(t, "sriov", nil, nil)
	create(t, ippool("sriov-v4", "10.29.0.0/24", []string{"10.29.0.10-10.29.0.20"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"sriov/fast"} }))
	create(t, &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "sriov", Name: "fast"}, Spec: berthv1.NetworkSpec{
		CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice"},
		IPPools: &berthv1.PoolSelection{IPv4: []string{"sriov-v4"}},
	}})
	waitNAD(t, "sriov", "fast")
	p := pod("sriov", "dpdk", map[string]string{nadv1.NetworksAnnotation: "fast,fast"}, nil)
	create(t, p)
	req := p.Spec.Containers[0].Resources.Requests["berth.io/sriov_netdevice"]
	lim := p.Spec.Containers[0].Resources.Limits["berth.io/sriov_netdevice"]
	if req.Value() != 2 || lim.Value() != 2 {
		t.Fatalf("requests %v limits %v of berth.io/sriov_netdevice, want 2 and 2", req.String(), lim.String())
	}
	if len(assignmentOf(t, p).Interfaces) != 2 {
		t.Fatalf("assignment %+v", assignmentOf(t, p))
	}
}

// A node-bound pool binds the pod to its nodes and the scheduler keeps to
// them; a pod pinned to a node no pool serves is refused.
func TestNodeBoundPool(t *testing.T) {
	e := start(t)
	namespace(t, "rack", nil, nil)
	create(t, ippool("rack-r2", "10.30.0.0/24", []string{"10.30.0.10-10.30.0.60"}, func(s *berthv1.IPPoolSpec) {
		s.Networks = []string{"rack/net"}
		s.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r2"}}
	}))
	create(t, macvlan("rack", "net", []string{"rack-r2"}, nil))
	waitNAD(t, "rack", "net")
	create(t, deployment("rack", "web", 4, map[string]string{nadv1.NetworksAnnotation: "net"}))
	list := pods(t, "rack", map[string]string{"app": "web"}, 4)
	ctx := ctxFor(t, time.Minute)
	for i := range list {
		p := &list[i]
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || terms[0].MatchExpressions[0].Key != "rack" || terms[0].MatchExpressions[0].Values[0] != "r2" {
			t.Fatalf("pod %s: node affinity %+v", p.Name, terms)
		}
		if err := poll(ctx, func() (bool, error) {
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(p), p)
			return err == nil && p.Spec.NodeName != "", err
		}); err != nil {
			t.Fatalf("pod %s never scheduled: %v", p.Name, err)
		}
		if p.Spec.NodeName != e.nodes[2] {
			t.Errorf("pod %s scheduled on %s, the only r2 node is %s", p.Name, p.Spec.NodeName, e.nodes[2])
		}
	}
	pinned := pod("rack", "pinned", map[string]string{nadv1.NetworksAnnotation: "net"}, nil)
	pinned.Spec.NodeName = e.nodes[0]
	denied(t, pinned, `none of the ipv4 pools [rack-r2] from spec.ippools of Network rack/net may serve this pod: pool "rack-r2" does not serve node "`+e.nodes[0]+`", to which the pod is bound (spec.nodeName)`)
	forceDelete(t, "rack", map[string]string{"app": "web"})
}

func TestPoolAndPolicyValidation(t *testing.T) {
	start(t)
	create(t, ippool("val-a", "10.31.0.0/24", []string{"10.31.0.10-10.31.0.50"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"val"} }))
	denied(t, ippool("val-b", "10.31.0.0/24", []string{"10.31.0.40-10.31.0.60"}, func(s *berthv1.IPPoolSpec) { s.Networks = []string{"val"} }),
		`admission webhook "ippools.validate.berth.io" denied the request: ippool "val-b": spec.ips: addresses 10.31.0.40-10.31.0.50 are also handed out by ippool "val-a"`)
	denied(t, &berthv1.AttachmentPolicy{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: berthv1.AttachmentPolicySpec{Rego: "package berth.attachments\n\nattachments contains x if {\n  x := \n}\n", Priority: 10, Enabled: ptr.To(true)}},
		`admission webhook "attachmentpolicies.validate.berth.io" denied the request: attachmentpolicy "broken": spec.rego: 5:1: rego_parse_error: unexpected } token`)
}
