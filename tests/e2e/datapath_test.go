package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

var (
	pluginsOnce sync.Once
	pluginsDir  string // removed by TestMain
	pluginDirs  []string
	pluginsErr  error
)

// plugins builds Berth's CNI plugins once per package and returns them
// with the reference plugins' directory.
func plugins(t *testing.T) []string {
	t.Helper()
	pluginsOnce.Do(func() {
		pluginsDir, pluginsErr = os.MkdirTemp("", "berth-e2e-plugins-")
		if pluginsErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		pluginDirs, pluginsErr = multus.PluginDirs(ctx, pluginsDir)
	})
	if pluginsErr != nil {
		t.Fatalf("CNI plugins: %v", pluginsErr)
	}
	return pluginDirs
}

// TestAdmissionToInterfaces is the whole path: a pod asking for a Network by
// name is admitted (the webhook reserves a dual-stack pair and writes the
// annotations), then attached the way Multus does (the pod's networks
// annotation, the NetworkAttachmentDefinition the Network controller
// generated, the assignment in cni-args) in a simulated node, and the
// interface inside the pod carries exactly the assigned addresses and
// reaches the gateway over IPv4 and IPv6.
func TestAdmissionToInterfaces(t *testing.T) {
	netsim.RequireRoot(t)
	start(t)
	dirs := plugins(t)
	ns := namespace(t, "datapath", nil, nil)
	create(t,
		ippool("dp-v4", "10.21.0.0/16", []string{"10.21.1.10-10.21.1.20"}, func(s *berthv1.IPPoolSpec) { s.Gateway = ptr.To("10.21.0.1") }),
		ippool("dp-v6", "fd00:21::/64", []string{"fd00:21::10-fd00:21::20"}, func(s *berthv1.IPPoolSpec) { s.Gateway = ptr.To("fd00:21::1") }),
	)
	create(t, macvlan(ns, "storage", []string{"dp-v4"}, []string{"dp-v6"}))
	waitNAD(t, ns, "storage")
	create(t, pod(ns, "app", map[string]string{nadv1.NetworksAnnotation: "storage"}, nil))
	p := pods(t, ns, nil, 1)[0]
	a := assignmentOf(t, &p)
	v4, v6 := address(t, a, "net1", 4), address(t, a, "net1", 6)

	// The segment: a gateway answering for both pools' gateways and a node
	// whose uplink is the Network's master, eth1.
	u := netsim.NewUnderlay(t, netsim.UnderlayConfig{
		Gateway: []netip.Prefix{netip.MustParsePrefix("10.21.0.1/16"), netip.MustParsePrefix("fd00:21::1/64")},
		Nodes:   [][]netip.Prefix{{netip.MustParsePrefix("10.21.0.100/16")}},
		Uplink:  "eth1",
	})
	podNS := netsim.NewNS(t, "e2e-pod")
	cache := t.TempDir()
	cluster, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "cluster", "type": "ptp",
		"ipam": map[string]any{"type": "host-local", "subnet": "10.244.7.0/24", "dataDir": cache, "routes": []map[string]string{{"dst": "0.0.0.0/0"}}},
	})
	drv := &multus.Driver{
		Client:         cp.Client,
		Runtime:        multus.Runtime{BinDirs: dirs, CacheDir: cache, Exec: &netsim.PluginExec{NS: u.Nodes[0]}},
		ClusterNetwork: &multus.Attachment{Network: "kube-system/cluster", Config: cluster},
	}
	ctx := ctxFor(t, 2*time.Minute)
	res, err := drv.Attach(ctx, &p, podNS.Path)
	if err != nil {
		t.Fatalf("attaching pod %s as Multus would: %v", p.Name, err)
	}
	if len(res.Interfaces) != 2 || res.Interfaces[1].IfName != "net1" || res.Interfaces[1].Network != ns+"/storage" {
		t.Fatalf("attached %+v, want eth0 then net1 of %s/storage", res.Interfaces, ns)
	}

	out, err := podNS.Run(ctx, "ip", "-o", "addr", "show", "dev", "net1", "scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			got = append(got, f[3])
		}
	}
	if strings.Join(got, ",") != v4.Address+","+v6.Address {
		t.Errorf("net1 inside the pod has %v, admission assigned %s and %s", got, v4.Address, v6.Address)
	}
	for _, gw := range []string{"10.21.0.1", "fd00:21::1"} {
		if err := podNS.Ping(ctx, gw); err != nil {
			t.Errorf("the pod does not reach its gateway %s: %v", gw, err)
		}
	}
	// berth-coordinator (overlay: eth0 is the cluster network) sends the
	// cluster's service CIDR through eth0, as the Coordinator detected it.
	routes, err := podNS.Run(ctx, "ip", "route")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(routes, cp.ServiceCIDR+" via 10.244.7.1 dev eth0") {
		t.Errorf("no route to the service CIDR %s via eth0 in the pod:\n%s", cp.ServiceCIDR, routes)
	}

	if err := drv.Detach(ctx, &p, podNS.Path); err != nil {
		t.Fatalf("detaching: %v", err)
	}
	if out, err := podNS.Run(ctx, "ip", "link", "show", "net1"); err == nil {
		t.Errorf("net1 still in the pod after DEL:\n%s", out)
	}
}
