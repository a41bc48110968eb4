package multus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/tests/controlplane"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

var (
	cp      *controlplane.ControlPlane
	binDirs []string
)

func TestMain(m *testing.M) {
	os.Exit(multus.TestMain(m, func(dirs []string) int {
		binDirs = dirs
		return controlplane.Main(m, controlplane.Options{}, &cp)
	}))
}

// unreachableKubeconfig points at a port nobody listens on: a plugin that
// tried an API call with it would fail.
func unreachableKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// storageNAD is the NetworkAttachmentDefinition the Network controller
// would write: macvlan on the node's uplink with berth-ipam (with the
// pool data for the ips capability) and berth-coordinator.
func storageNAD(t *testing.T, name, kubeconfig string) *nadv1.NetworkAttachmentDefinition {
	config := map[string]any{
		"cniVersion": "1.1.0", "name": name,
		"plugins": []any{
			map[string]any{
				"type": "macvlan", "master": netsim.Uplink, "mode": "bridge",
				"capabilities": map[string]bool{"ips": true, "mac": true},
				"ipam": map[string]any{"type": "berth-ipam", "kubeconfig": kubeconfig, "apiTimeout": "5s",
					"pools": []any{map[string]any{"name": "storage-v4", "subnet": "10.6.0.0/16", "gateway": "10.6.0.1"}}},
			},
			map[string]any{"type": "berth-coordinator", "mode": "auto", "podCIDRs": []string{"10.244.0.0/16"},
				"serviceCIDRs": []string{"10.96.0.0/16"}, "detectGateway": true, "kubeconfig": kubeconfig},
		},
	}
	data, _ := json.Marshal(config)
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: string(data)},
	}
	ctx := controlplane.Context(t, 10*time.Second)
	if err := cp.Client.Create(ctx, nad); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), nad) })
	return nad
}

// admittedPod creates a pod carrying the annotations the webhook writes at
// admission (DESIGN.md, api/assignment): berth.io/assignment and the
// enriched networks annotation with interface, ips and cni-args.
func admittedPod(t *testing.T, name, network, address string) *corev1.Pod {
	itf := assignment.Interface{
		Interface: "net1", Network: "default/" + network,
		Addresses: []assignment.Address{{Address: address, Gateway: "10.6.0.1", Pool: "storage-v4",
			Allocation: "storage-v4." + strings.Split(address, "/")[0]}},
	}
	a := assignment.Assignment{Interfaces: []assignment.Interface{itf}}
	value, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	elems := []nadv1.NetworkSelectionElement{{
		Name: network, Namespace: "default", InterfaceRequest: "net1", IPRequest: []string{address},
		CNIArgs: map[string]any{assignment.CNIArgsKey: itf},
	}}
	networks, _ := json.Marshal(elems)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{
			assignment.Annotation:    value,
			nadv1.NetworksAnnotation: string(networks),
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	ctx := controlplane.Context(t, 10*time.Second)
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), pod) })
	return pod
}

func clusterNetwork(t *testing.T) *multus.Attachment {
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "cluster", "type": "ptp",
		"ipam": map[string]any{"type": "host-local", "subnet": "10.244.1.0/24", "dataDir": t.TempDir(),
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}}},
	})
	return &multus.Attachment{Network: "kube-system/cluster", Config: conf}
}

func newNode(t *testing.T) *netsim.NS {
	netsim.RequireRoot(t)
	u := netsim.NewUnderlay(t, netsim.UnderlayConfig{
		Gateway: []netip.Prefix{netip.MustParsePrefix("10.6.0.1/16")},
		Nodes:   [][]netip.Prefix{{netip.MustParsePrefix("10.6.0.10/16")}},
	})
	return u.Nodes[0]
}

// The whole path admission -> pod annotations -> interfaces: the driver
// reads the pod and its NetworkAttachmentDefinition from the API server
// and runs the chain as Multus would. The plugins' kubeconfig points
// nowhere: through Multus they make no API call (invariant 4).
func TestAttachFromAnnotations(t *testing.T) {
	node := newNode(t)
	storageNAD(t, "storage", unreachableKubeconfig(t))
	pod := admittedPod(t, "web-0", "storage", "10.6.1.60/16")
	netns := netsim.NewNS(t, "berth-pod")
	d := &multus.Driver{
		Client:         cp.Client,
		Runtime:        multus.Runtime{BinDirs: binDirs, CacheDir: t.TempDir(), Exec: &netsim.PluginExec{NS: node}},
		ClusterNetwork: clusterNetwork(t),
	}
	ctx := controlplane.Context(t, time.Minute)
	res, err := d.Attach(ctx, pod, netns.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 2 || res.Interfaces[1].IfName != "net1" || res.Interfaces[1].Result.IPs[0].Address.String() != "10.6.1.60/16" {
		t.Fatalf("attached %+v", res.Interfaces)
	}
	out, err := netns.Run(ctx, "ip", "rule")
	if err != nil || !strings.Contains(out, "from 10.6.1.60 lookup") {
		t.Errorf("no policy rule for net1: %v\n%s", err, out)
	}
	if err := netns.Ping(ctx, "10.6.0.1"); err != nil {
		t.Errorf("pinging the gateway over net1: %v", err)
	}
	if err := d.Check(ctx, pod, netns.Path); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := d.WriteStatus(ctx, pod, res); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	var status []multus.NetworkStatus
	if err := json.Unmarshal([]byte(got.Annotations[nadv1.NetworkStatusAnnotation]), &status); err != nil {
		t.Fatal(err)
	}
	if len(status) != 2 || status[1].Name != "default/storage" || status[1].Interface != "net1" || status[1].IPs[0] != "10.6.1.60" || status[1].MAC == "" || !status[0].Default {
		t.Errorf("network-status %+v", status)
	}
	if err := d.Detach(ctx, pod, netns.Path); err != nil {
		t.Fatal(err)
	}
	if out, _ := netns.Run(ctx, "ip", "-o", "link"); strings.Contains(out, "net1") || strings.Contains(out, "eth0") {
		t.Errorf("links left after Detach:\n%s", out)
	}
}

// Without Multus's args.cni the chain falls back to the ips capability
// plus the pool data in the configuration.
func TestFallbackToIPsCapability(t *testing.T) {
	node := newNode(t)
	storageNAD(t, "storage-ips", unreachableKubeconfig(t))
	pod := admittedPod(t, "web-1", "storage-ips", "10.6.1.61/16")
	rt := &multus.Runtime{BinDirs: binDirs, CacheDir: t.TempDir(), Exec: &netsim.PluginExec{NS: node}}
	d := &multus.Driver{Client: cp.Client, Runtime: *rt}
	ctx := controlplane.Context(t, time.Minute)
	atts, err := d.Attachments(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	a := atts[0]
	a.CNIArgs = nil
	// Without args.cni the coordinator would read the pod for the
	// default-route interface; disabled keeps this about berth-ipam.
	a.Config = []byte(strings.Replace(string(a.Config), `"mode":"auto"`, `"mode":"disabled"`, 1))
	netns := netsim.NewNS(t, "berth-pod")
	res, err := rt.Add(ctx, multus.Ref(pod), netns.Path, a)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Del(context.Background(), multus.Ref(pod), netns.Path, a) }()
	if res.IPs[0].Address.String() != "10.6.1.61/16" || res.IPs[0].Gateway.String() != "10.6.0.1" {
		t.Errorf("got %v", res.IPs)
	}
}

// Called without Multus, berth-ipam reads the assignment with one GET of
// the pod from the real API server, and refuses a pod whose UID is not the
// one being set up.
func TestFallbackToOneGET(t *testing.T) {
	pod := admittedPod(t, "web-2", "storage", "10.6.1.62/16")
	// berth-ipam on its own touches no netns: run it in this process's
	// namespace, where the API server is.
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"bare","type":"berth-ipam","ipam":{"type":"berth-ipam","kubeconfig":%q}}`, cp.Kubeconfig)
	rt := &multus.Runtime{BinDirs: binDirs, CacheDir: t.TempDir()}
	a := multus.Attachment{Network: "default/bare", IfName: "net1", Config: []byte(conf)}
	ctx := controlplane.Context(t, time.Minute)
	for _, tc := range []struct {
		name   string
		ref    multus.PodRef
		code   uint
		substr string
	}{
		{"the pod", multus.Ref(pod), 0, ""},
		{"another pod of that name", multus.PodRef{Namespace: "default", Name: "web-2", UID: "not-the-uid"}, cnierr.PodMismatch, "K8S_POD_UID is not-the-uid"},
		{"a pod that does not exist", multus.PodRef{Namespace: "default", Name: "gone", UID: "u"}, types.ErrTryAgainLater, `pods "gone" not found`},
		{"an interface it has no assignment for", multus.Ref(pod), cnierr.NoAssignment, "has no entry for interface net9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a
			if tc.code == cnierr.NoAssignment {
				a.IfName = "net9"
			}
			res, err := rt.Add(ctx, tc.ref, "/run/netns/unused", a)
			if tc.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if res.IPs[0].Address.String() != "10.6.1.62/16" {
					t.Errorf("got %v", res.IPs)
				}
				return
			}
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Msg, tc.substr) {
				t.Fatalf("got %v, want code %d containing %q", err, tc.code, tc.substr)
			}
		})
	}
}
