package ifacer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/vishvananda/netlink"

	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/tests/netsim"
)

// The tests of this file make bonds and VLANs, which need the kernel's
// bonding and 8021q drivers. Where the kernel has no such link type they
// skip, saying so: that is a limit of the machine, not missing
// infrastructure, so CI=true does not turn it into a failure. They are
// written to pass on a kernel that has them.

// requireLinkType skips the test when this kernel cannot make links of
// kind, trying in a scratch namespace; any other failure fails the test.
func requireLinkType(t *testing.T, kind string) {
	t.Helper()
	netsim.RequireRoot(t)
	probe := netsim.NewNS(t, "berth-ifprobe")
	ctx := t.Context()
	args := []string{"link", "add", "probe0", "type", kind}
	if kind == "vlan" {
		// A VLAN needs a parent that can carry VLANs (lo cannot).
		if _, err := probe.Run(ctx, "ip", "link", "add", "probe1", "type", "veth", "peer", "name", "probe2"); err != nil {
			t.Fatal(err)
		}
		args = []string{"link", "add", "link", "probe1", "name", "probe0", "type", "vlan", "id", "5"}
	}
	_, err := probe.Run(ctx, "ip", args...)
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "Unknown device type"):
		t.Skipf("kernel has no %s link type (ip %s: Unknown device type)", kind, strings.Join(args, " "))
	default:
		t.Fatalf("probing for the %s link type: %v", kind, err)
	}
}

// A VLAN sub-interface is made on the parent (brought up first), carries
// the pod's traffic tagged (the switch only answers on VLAN 100), and is
// kept by later pods and by DEL.
func TestMakesVLAN(t *testing.T) {
	requireLinkType(t, "vlan")
	n := newTestNode(t)
	cni := n.runtime(t)
	n.cable(t, "eth1", "port1")
	ip(t, n.sw, "link", "add", "link", "port1", "name", "port1.100", "type", "vlan", "id", "100")
	ip(t, n.sw, "link", "set", "port1.100", "up")
	ip(t, n.sw, "addr", "add", "10.6.0.1/16", "dev", "port1.100")
	const fields = `"interfaces":["eth1"],"vlanID":100`

	first := newAttachment(t, chainConf("1.1.0", fields, "eth1.100", "10.6.1.5/16"))
	addAll(t, cni, []*attached{first})
	l := links(t, n.NS)
	vlan := l["eth1.100"]
	if vlan.Kind != "vlan" || vlan.Parent != "eth1" || vlan.VLANID != 100 || !vlan.Up || !l["eth1"].Up {
		t.Fatalf("after ADD: eth1.100 %+v, eth1 %+v; want VLAN 100 of eth1, both up", vlan, l["eth1"])
	}
	pingEventually(t, first.pod, "10.6.0.1")

	var more []*attached
	for i := 0; i < 6; i++ {
		more = append(more, newAttachment(t, chainConf("1.1.0", fields, "eth1.100", fmt.Sprintf("10.6.1.%d/16", 10+i))))
	}
	addAll(t, cni, more)
	if got := links(t, n.NS)["eth1.100"]; got.Index != vlan.Index {
		t.Errorf("eth1.100 made again by later pods (index %d, was %d)", got.Index, vlan.Index)
	}
	for _, a := range append(more, first) {
		if err := cni.CheckNetworkList(t.Context(), a.list, a.rt); err != nil {
			t.Errorf("CHECK: %v", err)
		}
	}
	if err := cni.DelNetworkList(t.Context(), first.list, first.rt); err != nil {
		t.Fatal(err)
	}
	if got := links(t, n.NS)["eth1.100"]; got.Index != vlan.Index || !got.Up {
		t.Errorf("eth1.100 after DEL: %+v, want it kept and up", got)
	}
	pingEventually(t, more[0].pod, "10.6.0.1")
}

// A bond is made of the members (the one that was up set down to be
// enslaved, as the kernel requires), with the mode and options asked for,
// and carries the pod's traffic.
func TestMakesBond(t *testing.T) {
	requireLinkType(t, "bond")
	n := newTestNode(t)
	cni := n.runtime(t)
	n.cable(t, "eth1", "port1")
	n.cable(t, "eth2", "port2")
	ip(t, n.NS, "link", "set", "eth1", "up")
	ip(t, n.sw, "link", "add", "br0", "type", "bridge")
	for _, p := range []string{"port1", "port2"} {
		ip(t, n.sw, "link", "set", p, "master", "br0")
	}
	ip(t, n.sw, "link", "set", "br0", "up")
	ip(t, n.sw, "addr", "add", "10.6.0.1/16", "dev", "br0")
	const fields = `"interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":"miimon=100; primary=eth1; primary_reselect=better"}`

	first := newAttachment(t, chainConf("1.0.0", fields, "bond0", "10.6.1.5/16"))
	addAll(t, cni, []*attached{first})
	l := links(t, n.NS)
	b := l["bond0"]
	if b.Kind != "bond" || !b.Up || b.Bond == nil {
		t.Fatalf("bond0 after ADD: %+v, want a bond, up", b)
	}
	if b.Bond.Mode != netlink.BOND_MODE_ACTIVE_BACKUP || b.Bond.Miimon != 100 || b.Bond.Primary != l["eth1"].Index ||
		b.Bond.PrimaryReselect != netlink.BOND_PRIMARY_RESELECT_BETTER {
		t.Errorf("bond0: mode %v miimon %d primary %d reselect %v; want active-backup, 100, eth1 (%d), better",
			b.Bond.Mode, b.Bond.Miimon, b.Bond.Primary, b.Bond.PrimaryReselect, l["eth1"].Index)
	}
	for _, m := range []string{"eth1", "eth2"} {
		if l[m].Master != "bond0" || !l[m].Up {
			t.Errorf("%s: %+v, want it up in bond0", m, l[m])
		}
	}
	pingEventually(t, first.pod, "10.6.0.1")

	second := newAttachment(t, chainConf("1.0.0", fields, "bond0", "10.6.1.6/16"))
	addAll(t, cni, []*attached{second})
	if got := links(t, n.NS)["bond0"]; got.Index != b.Index {
		t.Errorf("bond0 made again (index %d, was %d)", got.Index, b.Index)
	}
	if err := cni.CheckNetworkList(t.Context(), second.list, second.rt); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := cni.DelNetworkList(t.Context(), first.list, first.rt); err != nil {
		t.Fatal(err)
	}
	if got := links(t, n.NS)["bond0"]; got.Index != b.Index || !got.Up {
		t.Errorf("bond0 after DEL: %+v, want it kept and up", got)
	}
}

// A VLAN on a new 802.3ad bond, options of that mode applied.
func TestMakesBondAndVLAN(t *testing.T) {
	requireLinkType(t, "bond")
	requireLinkType(t, "vlan")
	n := newTestNode(t)
	pod := netsim.NewNS(t, "berth-ifpod")
	n.cable(t, "eth3", "port3")
	n.cable(t, "eth4", "port4")
	conf := ifacerConf("1.1.0", `"interfaces":["eth3","eth4"],"vlanID":200,"bond":{"name":"bond1","mode":4,"options":"lacp_rate=fast;xmit_hash_policy=layer3+4"}`)
	if _, err := n.exec(t, "ADD", conf, pod); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	l := links(t, n.NS)
	b, v := l["bond1"], l["bond1.200"]
	if b.Bond == nil || b.Bond.Mode != netlink.BOND_MODE_802_3AD || b.Bond.LacpRate != netlink.BOND_LACP_RATE_FAST ||
		b.Bond.XmitHashPolicy != netlink.BOND_XMIT_HASH_POLICY_LAYER3_4 || !b.Up {
		t.Errorf("bond1: %+v, want an 802.3ad bond, lacp_rate fast, layer3+4, up", b.Bond)
	}
	if v.Kind != "vlan" || v.Parent != "bond1" || v.VLANID != 200 || !v.Up {
		t.Errorf("bond1.200: %+v, want VLAN 200 of bond1, up", v)
	}
	if _, err := n.exec(t, "CHECK", conf, pod); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	before := summary(l)
	if _, err := n.exec(t, "ADD", conf, pod); err != nil {
		t.Fatalf("second ADD: %v", err)
	}
	if after := summary(links(t, n.NS)); !slices.Equal(after, before) {
		t.Errorf("the second ADD changed the node:\n  %s\nwas\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
	}
}

// Many ADDs at once on a node where nothing is made yet: every one
// succeeds and there is one master, made once.
func TestConcurrentADDsMakeOneMaster(t *testing.T) {
	for _, tc := range []struct {
		kind, fields, master string
		members              []string
	}{
		{"vlan", `"interfaces":["eth5"],"vlanID":300`, "eth5.300", []string{"eth5"}},
		{"bond", `"interfaces":["eth6","eth7"],"bond":{"name":"bond7","mode":0}`, "bond7", []string{"eth6", "eth7"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			requireLinkType(t, tc.kind)
			n := newTestNode(t)
			for i, m := range tc.members {
				n.cable(t, m, fmt.Sprintf("port%d", i))
			}
			path := filepath.Join(pluginDir(t), cniconf.IfacerType)
			conf := []byte(ifacerConf("1.0.0", tc.fields))
			const adds = 8
			var pods []*netsim.NS
			for i := 0; i < adds; i++ {
				pods = append(pods, netsim.NewNS(t, "berth-ifpod"))
			}
			errs := make(chan error, adds)
			for _, pod := range pods {
				go func() {
					args := &invoke.Args{Command: "ADD", ContainerID: "ctr-" + pod.Name, NetNS: pod.Path, IfName: "net1", Path: filepath.Dir(path)}
					_, err := invoke.ExecPluginWithResult(context.Background(), path, conf, args, &netsim.PluginExec{NS: n.NS})
					errs <- err
				}()
			}
			for range pods {
				if err := <-errs; err != nil {
					t.Errorf("ADD: %v", err)
				}
			}
			l := links(t, n.NS)
			if m, ok := l[tc.master]; !ok || m.Kind != tc.kind || !m.Up {
				t.Errorf("%s: %+v, want one %s, up", tc.master, m, tc.kind)
			}
			count := 0
			for _, li := range l {
				if li.Kind == tc.kind {
					count++
				}
			}
			if count != 1 {
				t.Errorf("%d links of kind %s, want 1: %v", count, tc.kind, summary(l))
			}
		})
	}
}

// Interfaces of the right name but the wrong mode or VLAN are named and
// left alone.
func TestExistingOfOtherShapeNamed(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		setup      [][]string
		fields     string
		want       string
	}{
		{"bond in another mode", "bond", [][]string{{"link", "add", "bond0", "type", "bond", "mode", "802.3ad"}},
			`"interfaces":["eth1"],"bond":{"name":"bond0","mode":1}`, "bond.mode: bond bond0 exists in mode 4 (802.3ad), the configuration asks for 1 (active-backup)"},
		{"VLAN of another ID", "vlan", [][]string{{"link", "add", "link", "eth1", "name", "eth1.100", "type", "vlan", "id", "200"}},
			`"interfaces":["eth1"],"vlanID":100`, "vlanID: eth1.100 exists on the node with VLAN ID 200, not 100"},
		{"VLAN under another name", "vlan", [][]string{{"link", "add", "link", "eth1", "name", "vlan100", "type", "vlan", "id", "100"}},
			`"interfaces":["eth1"],"vlanID":100`, "vlanID: eth1 already has VLAN 100 as vlan100; the main plugin expects it named eth1.100"},
		{"802.1ad VLAN", "vlan", [][]string{{"link", "add", "link", "eth1", "name", "eth1.100", "type", "vlan", "proto", "802.1ad", "id", "100"}},
			`"interfaces":["eth1"],"vlanID":100`, "vlanID: eth1.100 exists on the node as an 802.1ad (0x88a8) VLAN, not 802.1Q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireLinkType(t, tc.kind)
			n := newTestNode(t)
			pod := netsim.NewNS(t, "berth-ifpod")
			n.cable(t, "eth1", "port1")
			for _, args := range tc.setup {
				ip(t, n.NS, args...)
			}
			before := summary(links(t, n.NS))
			_, err := n.exec(t, "ADD", ifacerConf("1.0.0", tc.fields), pod)
			setupFailed(t, err, tc.want)
			if after := summary(links(t, n.NS)); !slices.Equal(after, before) {
				t.Errorf("the node changed:\n  %s\nwas\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
			}
		})
	}
}

// A failure after the bond was made removes it and gives its members back
// as they were. eth2 already carries a macvlan, so the kernel refuses to
// enslave it (EBUSY) after eth1 was set down and enslaved.
func TestFailedADDRemovesTheBond(t *testing.T) {
	requireLinkType(t, "bond")
	n := newTestNode(t)
	pod := netsim.NewNS(t, "berth-ifpod")
	n.cable(t, "eth1", "port1")
	n.cable(t, "eth2", "port2")
	ip(t, n.NS, "link", "set", "eth1", "up")
	ip(t, n.NS, "link", "add", "mv0", "link", "eth2", "type", "macvlan")
	before := summary(links(t, n.NS))
	_, err := n.exec(t, "ADD", ifacerConf("1.0.0", `"interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1}`), pod)
	setupFailed(t, err, "making master bond0 on the node: enslave eth2 to bond0: device or resource busy (eth2 is in use: another master, or macvlan/ipvlan interfaces on it)")
	if after := summary(links(t, n.NS)); !slices.Equal(after, before) {
		t.Errorf("the node after the failed ADD:\n  %s\nwant as it was\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
	}
}
