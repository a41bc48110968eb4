package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// The simulated underlay: 10.6.0.0/16 and fd00:6::/64 with the gateway
// at .1/::1; node N has 10.6.0.1N and fd00:6::1N on its uplink.
var (
	gw4, gw6     = netip.MustParsePrefix("10.6.0.1/16"), netip.MustParsePrefix("fd00:6::1/64")
	node4, node6 = []string{"10.6.0.10/16", "10.6.0.11/16"}, []string{"fd00:6::10/64", "fd00:6::11/64"}
	serviceCIDRs = []string{"10.96.0.0/16", "fd00:96::/112"}
	podCIDRs     = []string{"10.244.0.0/16"}
)

func newUnderlay(t *testing.T, nodes int) *netsim.Underlay {
	t.Helper()
	netsim.RequireRoot(t)
	cfg := netsim.UnderlayConfig{Gateway: []netip.Prefix{gw4, gw6}}
	for i := 0; i < nodes; i++ {
		cfg.Nodes = append(cfg.Nodes, []netip.Prefix{netip.MustParsePrefix(node4[i]), netip.MustParsePrefix(node6[i])})
	}
	return netsim.NewUnderlay(t, cfg)
}

// chain is a NetworkAttachmentDefinition config: a main plugin with
// berth-ipam, optionally followed by berth-coordinator.
type chain struct {
	version     string
	main        map[string]any // without ipam
	coordinator map[string]any // nil: no coordinator
	name        string
}

func macvlanChain(version string, coordinator map[string]any) chain {
	return chain{
		version:     version,
		name:        "storage",
		main:        map[string]any{"type": "macvlan", "master": netsim.Uplink, "mode": "bridge", "capabilities": map[string]bool{"ips": true, "mac": true}},
		coordinator: coordinator,
	}
}

func (c chain) config() []byte {
	main := map[string]any{"ipam": map[string]any{"type": cniconf.IPAMType}}
	for k, v := range c.main {
		main[k] = v
	}
	plugins := []any{main}
	if c.coordinator != nil {
		co := map[string]any{"type": cniconf.CoordinatorType}
		for k, v := range c.coordinator {
			co[k] = v
		}
		plugins = append(plugins, co)
	}
	data, _ := json.Marshal(map[string]any{"cniVersion": c.version, "name": c.name, "plugins": plugins})
	return data
}

// iface is an assignment for ifName with addresses "10.6.1.5/16" whose
// gateway is the underlay's of their family.
func iface(ifName string, defaultRoute bool, addrs ...string) assignment.Interface {
	itf := assignment.Interface{Interface: ifName, Network: "default/storage", DefaultRoute: defaultRoute}
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		gw := gw4.Addr()
		pool := "storage-v4"
		if !p.Addr().Is4() {
			gw, pool = gw6.Addr(), "storage-v6"
		}
		itf.Addresses = append(itf.Addresses, assignment.Address{
			Address: a, Gateway: gw.String(), Pool: pool,
			Allocation: pool + "." + strings.ReplaceAll(p.Addr().String(), ":", "-"),
		})
	}
	return itf
}

func attachment(c chain, itf assignment.Interface) multus.Attachment {
	return multus.Attachment{
		Network: "default/" + c.name,
		IfName:  itf.Interface,
		Config:  c.config(),
		CNIArgs: map[string]any{assignment.CNIArgsKey: itf},
	}
}

func runtimeOn(t *testing.T, node *netsim.NS) *multus.Runtime {
	return &multus.Runtime{BinDirs: binDirs, CacheDir: t.TempDir(), Exec: &netsim.PluginExec{NS: node}}
}

// podRef names a test pod; its UID keeps container IDs of different pods
// apart.
func podRef(name string) multus.PodRef {
	return multus.PodRef{Namespace: "default", Name: name, UID: "uid-" + name}
}

// mustAdd runs ADD and removes the attachment again when the test ends.
func mustAdd(t *testing.T, rt *multus.Runtime, pod multus.PodRef, netns *netsim.NS, a multus.Attachment) *current.Result {
	t.Helper()
	res, err := rt.Add(t.Context(), pod, netns.Path, a)
	if err != nil {
		t.Fatalf("ADD %s of %s: %v", a.IfName, pod.Name, err)
	}
	t.Cleanup(func() {
		if err := rt.Del(context.Background(), pod, netns.Path, a); err != nil {
			t.Errorf("DEL %s of %s: %v", a.IfName, pod.Name, err)
		}
	})
	return res
}

// cniError returns the plugin's CNI error object inside err.
func cniError(t *testing.T, err error) *types.Error {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("expected a CNI error object, got %T: %v", err, err)
	}
	return te
}
