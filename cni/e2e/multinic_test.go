package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/cni/coordinator"
	"github.com/berth-io/berth/tests/netsim"
)

// Two underlay interfaces, the default route on net1: eth0 keeps the veth
// to the host but moves to a table of its own, which also holds the
// cluster routes through veth0, so replies from eth0's address to the
// cluster still go through the host.
func TestUnderlayTwoNICsDefaultOnNet1(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	c := macvlanChain("1.1.0", map[string]any{"mode": "underlay", "serviceCIDRs": []string{"10.96.0.0/16"}})
	pod := netsim.NewNS(t, "berth-pod")
	rt := runtimeOn(t, node)
	ref := podRef("twonics")
	for _, itf := range []struct{ name, addr string }{{"eth0", "10.6.1.90/16"}, {"net1", "10.6.1.91/16"}} {
		a := attachment(c, iface(itf.name, itf.name == "net1", itf.addr))
		a.CNIArgs["berth.io/default-route-nic"] = "net1"
		mustAdd(t, rt, ref, pod, a)
		if err := rt.Check(t.Context(), ref, pod.Path, a); err != nil {
			t.Errorf("CHECK %s: %v", itf.name, err)
		}
	}
	eth0Table := coordinator.NICTableBase + linkIndex(t, pod, "eth0")
	equalLists(t, "main table", routeTable(t, pod, netlink.FAMILY_V4, unix.RT_TABLE_MAIN), []string{
		"10.6.0.0/16 dev eth0", "10.6.0.0/16 dev net1",
		"10.6.0.10/32 via 169.254.200.1 dev veth0", "10.96.0.0/16 via 169.254.200.1 dev veth0", "169.254.200.1/32 dev veth0",
		"default via 10.6.0.1 dev net1",
	})
	equalLists(t, "eth0's table", routeTable(t, pod, netlink.FAMILY_V4, eth0Table), []string{
		"10.6.0.0/16 dev eth0",
		"10.6.0.10/32 via 169.254.200.1 dev veth0", "10.96.0.0/16 via 169.254.200.1 dev veth0", "169.254.200.1/32 dev veth0",
		"default via 10.6.0.1 dev eth0",
	})
	equalLists(t, "rules", rules(t, pod, netlink.FAMILY_V4), []string{fmt.Sprintf("%d: from 10.6.1.90/32 lookup %d", coordinator.PodRulePriority, eth0Table)})
	// From eth0's address, the node is still reached through the host.
	if _, err := pod.Run(t.Context(), "ping", "-c", "1", "-W", "2", "-I", "10.6.1.90", "10.6.0.10"); err != nil {
		t.Errorf("ping from eth0's address to the node: %v", err)
	}
	pingEventually(t, pod, gw4.Addr().String())
}

// ipvlan shares its master's MAC, so the chain works as with macvlan minus
// the MAC prefix; the kernel of the development machines has no ipvlan.
func TestIPvlanChain(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	if out, err := node.Run(t.Context(), "ip", "link", "add", "probe0", "link", netsim.Uplink, "type", "ipvlan", "mode", "l2"); err != nil {
		if strings.Contains(out, "Unknown device type") || strings.Contains(out, "not supported") {
			t.Skipf("this kernel has no ipvlan links (%s): the ipvlan data path cannot run here", strings.TrimSpace(out))
		}
		t.Fatal(err)
	}
	if _, err := node.Run(t.Context(), "ip", "link", "del", "probe0"); err != nil {
		t.Fatal(err)
	}
	c := chain{version: "1.1.0", name: "ipv", main: map[string]any{"type": "ipvlan", "master": netsim.Uplink, "mode": "l2", "capabilities": map[string]bool{"ips": true}},
		coordinator: map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs, "detectGateway": true}}
	pod := netsim.NewNS(t, "berth-pod")
	mustAdd(t, runtimeOn(t, node), podRef("ipvlan"), pod, attachment(c, iface("eth0", true, "10.6.1.95/16")))
	pingEventually(t, pod, gw4.Addr().String())
	pingEventually(t, pod, "10.6.0.10")
}
