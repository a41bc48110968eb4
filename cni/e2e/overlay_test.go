package e2e

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/cni/coordinator"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// clusterNetwork is the stand-in for the cluster's CNI: ptp with
// host-local gives eth0 10.244.1.x and a default route via 10.244.1.1.
func clusterNetwork(t *testing.T) multus.Attachment {
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "cluster", "type": "ptp",
		"ipam": map[string]any{
			"type": "host-local", "subnet": "10.244.1.0/24", "dataDir": t.TempDir(),
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	})
	return multus.Attachment{Network: "kube-system/cluster", IfName: "eth0", Config: conf}
}

// A pod with eth0 from the cluster network and net1 from
// macvlan + berth-ipam + berth-coordinator in overlay mode: the tables and
// rules are exactly these, and the default route follows default-route-nic.
func TestOverlayRoutingTables(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	coord := map[string]any{"mode": "overlay", "serviceCIDRs": serviceCIDRs, "podCIDRs": podCIDRs}
	c := macvlanChain("1.1.0", coord)

	for _, tc := range []struct {
		name         string
		defaultOnNet bool
	}{
		{"default route stays on eth0", false},
		{"default-route-nic net1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := netsim.NewNS(t, "berth-pod")
			rt := runtimeOn(t, node)
			ref := podRef("overlay")
			res := mustAdd(t, rt, ref, pod, clusterNetwork(t))
			eth0IP := res.IPs[0].Address.IP.String()
			mustAdd(t, rt, ref, pod, attachment(c, iface("net1", tc.defaultOnNet, "10.6.1.5/16", "fd00:6::1:5/64")))

			net1Table := coordinator.NICTableBase + linkIndex(t, pod, "net1")
			eth0Table := coordinator.NICTableBase + linkIndex(t, pod, "eth0")
			clusterRoutes := []string{
				"10.244.0.0/16 via 10.244.1.1 dev eth0",
				"10.96.0.0/16 via 10.244.1.1 dev eth0",
				"10.6.0.10/32 via 10.244.1.1 dev eth0", // the node's own address
			}
			eth0Routes := []string{"10.244.1.0/24 via 10.244.1.1 dev eth0", "10.244.1.1/32 dev eth0"}
			main := append(append([]string{"10.6.0.0/16 dev net1"}, eth0Routes...), clusterRoutes...)
			if tc.defaultOnNet {
				main = append(main, "default via 10.6.0.1 dev net1")
				equalLists(t, "main table", routeTable(t, pod, netlink.FAMILY_V4, unix.RT_TABLE_MAIN), main)
				equalLists(t, "eth0's table", routeTable(t, pod, netlink.FAMILY_V4, eth0Table),
					append(append([]string{"default via 10.244.1.1 dev eth0"}, eth0Routes...), clusterRoutes...))
				equalLists(t, "rules", rules(t, pod, netlink.FAMILY_V4), []string{fmt.Sprintf("%d: from %s/32 lookup %d", coordinator.PodRulePriority, eth0IP, eth0Table)})
				// eth0 has no IPv6: net1 simply takes the IPv6 default.
				equalLists(t, "main table (IPv6)", routeTable(t, pod, netlink.FAMILY_V6, unix.RT_TABLE_MAIN), []string{"default via fd00:6::1 dev net1", "fd00:6::/64 dev net1"})
				equalLists(t, "rules (IPv6)", rules(t, pod, netlink.FAMILY_V6), nil)
			} else {
				main = append(main, "default via 10.244.1.1 dev eth0")
				equalLists(t, "main table", routeTable(t, pod, netlink.FAMILY_V4, unix.RT_TABLE_MAIN), main)
				equalLists(t, "net1's table", routeTable(t, pod, netlink.FAMILY_V4, net1Table),
					[]string{"10.6.0.0/16 dev net1", "default via 10.6.0.1 dev net1"})
				equalLists(t, "rules", rules(t, pod, netlink.FAMILY_V4), []string{fmt.Sprintf("%d: from 10.6.1.5/32 lookup %d", coordinator.PodRulePriority, net1Table)})
				equalLists(t, "main table (IPv6)", routeTable(t, pod, netlink.FAMILY_V6, unix.RT_TABLE_MAIN), []string{"fd00:6::/64 dev net1"})
				equalLists(t, "net1's table (IPv6)", routeTable(t, pod, netlink.FAMILY_V6, net1Table), []string{"default via fd00:6::1 dev net1", "fd00:6::/64 dev net1"})
				equalLists(t, "rules (IPv6)", rules(t, pod, netlink.FAMILY_V6), []string{fmt.Sprintf("%d: from fd00:6::1:5/128 lookup %d", coordinator.PodRulePriority, net1Table)})
			}
			// Both ways out work: the gateway over net1, the node over eth0.
			pingEventually(t, pod, gw4.Addr().String())
			pingEventually(t, pod, "10.6.0.10")
		})
	}
}
