package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/coordinator"
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

// routeTable lists a table of the namespace as "dst [via gw] dev name",
// sorted, leaving out the kernel's per-link IPv6 link-local and multicast
// routes.
func routeTable(t *testing.T, n *netsim.NS, fam, table int) []string {
	t.Helper()
	var out []string
	err := n.Do(func() error {
		routes, err := netlinksafe.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Table != table || r.Type != unix.RTN_UNICAST {
				continue
			}
			dst := "default"
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones > 0 {
					dst = r.Dst.String()
				}
				if r.Dst.IP.To4() == nil && (r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast()) {
					continue
				}
			}
			s := dst
			if r.Gw != nil {
				s += " via " + r.Gw.String()
			}
			link, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return err
			}
			out = append(out, s+" dev "+link.Attrs().Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing table %d in %s: %v", table, n.Name, err)
	}
	sort.Strings(out)
	return out
}

// rules lists the namespace's rules other than the kernel's defaults as
// "pref: [from src] [to dst] lookup table".
func rules(t *testing.T, n *netsim.NS, fam int) []string {
	t.Helper()
	var out []string
	err := n.Do(func() error {
		rs, err := netlinksafe.RuleList(fam)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Table == unix.RT_TABLE_LOCAL || r.Table == unix.RT_TABLE_MAIN || r.Table == unix.RT_TABLE_DEFAULT {
				continue
			}
			s := fmt.Sprintf("%d:", r.Priority)
			if r.Src != nil {
				s += " from " + r.Src.String()
			}
			if r.Dst != nil {
				s += " to " + r.Dst.String()
			}
			out = append(out, s+fmt.Sprintf(" lookup %d", r.Table))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing rules in %s: %v", n.Name, err)
	}
	sort.Strings(out)
	return out
}

func linkIndex(t *testing.T, n *netsim.NS, name string) int {
	t.Helper()
	var idx int
	err := n.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		return nil
	})
	if err != nil {
		t.Fatalf("finding %s in %s: %v", name, n.Name, err)
	}
	return idx
}

func hasLink(t *testing.T, n *netsim.NS, name string) bool {
	t.Helper()
	found := false
	err := n.Do(func() error {
		_, err := netlink.LinkByName(name)
		found = err == nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func equalLists(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// hostVeth is the name berth-coordinator gives the host side of a pod's
// underlay veth (the container ID is the driver's).
func hostVeth(pod multus.PodRef, ifName string) string {
	sum := sha256.Sum256([]byte(pod.ContainerID() + "/" + ifName))
	return coordinator.HostVethPrefix + hex.EncodeToString(sum[:])[:12]
}
