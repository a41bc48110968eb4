package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/tests/netsim"
)

// A gateway that does not answer, or an address someone else on the
// segment holds, fails ADD with that said, and the coordinator leaves
// nothing behind; DEL then removes the main plugin's part.
func TestSegmentChecksFailAdd(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	// The gateway namespace also holds 10.6.7.7 and fd00:6::7:7, as a
	// host that took those addresses by hand would.
	for _, a := range []string{"10.6.7.7/16", "fd00:6::7:7/64"} {
		args := []string{"addr", "add", a, "dev", "br0"}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		if _, err := u.Gateway.Run(t.Context(), "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	brMAC := macOf(t, u.Gateway, "br0")
	detect := map[string]any{"mode": "underlay", "detectGateway": true, "detectIPConflict": true, "detectGatewayTimeout": "1s", "serviceCIDRs": serviceCIDRs}

	for _, tc := range []struct {
		name     string
		itf      func() any
		code     uint
		contains string
	}{
		{
			name: "IPv4 gateway unreachable",
			itf: func() any {
				i := iface("eth0", true, "10.6.1.20/16")
				i.Addresses[0].Gateway = "10.6.0.254"
				return i
			},
			code:     cnierr.GatewayUnreachable,
			contains: "gateway 10.6.0.254 did not answer ARP on eth0 within 1s",
		},
		{
			name: "IPv6 gateway unreachable",
			itf: func() any {
				i := iface("eth0", true, "fd00:6::1:20/64")
				i.Addresses[0].Gateway = "fd00:6::fe"
				return i
			},
			code:     cnierr.GatewayUnreachable,
			contains: "gateway fd00:6::fe did not answer NDP neighbor solicitation on eth0 within 1s",
		},
		{
			name:     "IPv4 address in use",
			itf:      func() any { return iface("eth0", true, "10.6.7.7/16") },
			code:     cnierr.AddressConflict,
			contains: fmt.Sprintf("address 10.6.7.7 is already used on the segment of eth0 by %s", brMAC),
		},
		{
			// With an IPv6 gateway the main plugin waits for duplicate
			// address detection itself and fails first (DADFAILED); without
			// one, the coordinator is who notices.
			name: "IPv6 address in use",
			itf: func() any {
				i := iface("eth0", true, "fd00:6::7:7/64")
				i.Addresses[0].Gateway = ""
				return i
			},
			code:     cnierr.AddressConflict,
			contains: "address fd00:6::7:7 is already used on the segment of eth0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := netsim.NewNS(t, "berth-pod")
			rt := runtimeOn(t, node)
			ref := podRef("checked")
			a := attachment(macvlanChain("1.1.0", detect), iface("eth0", true))
			a.CNIArgs["berth.io/assignment"] = tc.itf()
			before := rules(t, node, netlink.FAMILY_ALL)
			_, err := rt.Add(t.Context(), ref, pod.Path, a)
			if err == nil {
				t.Fatal("ADD succeeded")
			}
			te := cniError(t, err)
			if te.Code != tc.code || !strings.Contains(te.Msg, tc.contains) || !strings.Contains(te.Msg, "pod default/checked interface eth0") {
				t.Fatalf("got code %d %q, want code %d containing %q and naming the pod", te.Code, te.Msg, tc.code, tc.contains)
			}
			// The coordinator took back its own work at once.
			if hasLink(t, pod, "veth0") || hasLink(t, node, hostVeth(ref, "eth0")) {
				t.Error("the underlay veth was left behind")
			}
			equalLists(t, "node rules after the failed ADD", rules(t, node, netlink.FAMILY_ALL), before)
			if err := rt.Del(t.Context(), ref, pod.Path, a); err != nil {
				t.Fatalf("DEL after the failed ADD: %v", err)
			}
			if hasLink(t, pod, "eth0") {
				t.Error("eth0 left in the pod after DEL")
			}
		})
	}
}

func macOf(t *testing.T, n *netsim.NS, name string) string {
	t.Helper()
	var mac string
	if err := n.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr.String()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// A failure after the coordinator made the veth pair (here: the node has
// IPv6 disabled, so the host side cannot take its IPv6 next-hop address)
// takes the pair back: nothing of the coordinator stays on the node or in
// the pod.
func TestFailedAddLeavesNoVeth(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
		if _, err := node.Run(t.Context(), "sysctl", "-qw", key); err != nil {
			t.Fatal(err)
		}
	}
	pod := netsim.NewNS(t, "berth-pod")
	rt := runtimeOn(t, node)
	ref := podRef("undo")
	a := attachment(macvlanChain("1.1.0", map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs}), iface("eth0", true, "10.6.1.70/16", "fd00:6::1:70/64"))
	_, err := rt.Add(t.Context(), ref, pod.Path, a)
	if err == nil {
		t.Fatal("ADD succeeded on a node without IPv6")
	}
	te := cniError(t, err)
	if te.Code != cnierr.SetupFailed || !strings.Contains(te.Msg, "adding address fe80::1/64 to "+hostVeth(ref, "eth0")) {
		t.Fatalf("got code %d %q", te.Code, te.Msg)
	}
	if hasLink(t, pod, "veth0") || hasLink(t, node, hostVeth(ref, "eth0")) {
		t.Error("the veth pair survived the failed ADD")
	}
	if r := rules(t, node, netlink.FAMILY_ALL); len(r) != 0 {
		t.Errorf("node rules after the failed ADD: %q", r)
	}
	if err := rt.Del(t.Context(), ref, pod.Path, a); err != nil {
		t.Fatalf("DEL after the failed ADD: %v", err)
	}
}
