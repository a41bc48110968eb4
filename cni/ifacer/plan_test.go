package ifacer

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-io/berth/api/cniconf"
)

// A node's interfaces for plan tests: lo, then what each case adds.
func node(links ...link) state {
	return state{links: append([]link{{name: "lo", index: 1, kind: "device", up: true, mtu: 65536}}, links...)}
}

func veth(name string, index int, up bool) link {
	return link{name: name, index: index, kind: "veth", up: up, mtu: 9000}
}

func bondLink(name string, index int, mode int32, up bool) link {
	return link{name: name, index: index, kind: kindBond, bondMode: mode, up: up, mtu: 9000}
}

func vlanLink(name string, index, parent int, id int32, up bool) link {
	return link{name: name, index: index, kind: kindVLAN, parent: parent, vlanID: id, vlanProto: vlanProto8021Q, up: up, mtu: 9000}
}

func enslaved(l link, master int) link { l.master = master; return l }

func withAddr(l link, a string) link {
	l.addrs = append(l.addrs, netip.MustParsePrefix(a))
	return l
}

func vlanConf(id int32, ifaces ...string) *cniconf.IfacerConfig {
	return &cniconf.IfacerConfig{Type: cniconf.IfacerType, Interfaces: ifaces, VLANID: id}
}

func bondConf(id int32, ifaces ...string) *cniconf.IfacerConfig {
	c := vlanConf(id, ifaces...)
	c.Bond = &cniconf.IfacerBond{Name: "bond0", Mode: 1, Options: "miimon=100;primary=eth1"}
	return c
}

// What ADD does for each state the node may be in: the steps in order, or
// the interface in the way, named with the field of the configuration.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   *cniconf.IfacerConfig
		st    state
		steps []string
		err   string
	}{
		{"master exists and is up: nothing", vlanConf(0, "eth1"), node(veth("eth1", 2, true)), nil, ""},
		{"master down: brought up", vlanConf(0, "eth1"), node(veth("eth1", 2, false)), []string{"set eth1 up"}, ""},
		{"master missing", vlanConf(0, "eth1"), node(), nil, "interfaces[0]: eth1 does not exist on the node"},

		{"VLAN made on an up parent", vlanConf(100, "eth1"), node(veth("eth1", 2, true)),
			[]string{"create VLAN eth1.100 (id 100) on eth1", "set eth1.100 up"}, ""},
		{"VLAN parent brought up first", vlanConf(100, "eth1"), node(veth("eth1", 2, false)),
			[]string{"set eth1 up", "create VLAN eth1.100 (id 100) on eth1", "set eth1.100 up"}, ""},
		{"VLAN exists: kept", vlanConf(100, "eth1"), node(veth("eth1", 2, true), vlanLink("eth1.100", 3, 2, 100, true)), nil, ""},
		{"VLAN exists down: brought up", vlanConf(100, "eth1"), node(veth("eth1", 2, true), vlanLink("eth1.100", 3, 2, 100, false)),
			[]string{"set eth1.100 up"}, ""},
		{"VLAN of unset protocol: kept", vlanConf(100, "eth1"), node(veth("eth1", 2, true), func() link { l := vlanLink("eth1.100", 3, 2, 100, true); l.vlanProto = 0; return l }()), nil, ""},
		{"VLAN name taken by a veth", vlanConf(100, "eth1"), node(veth("eth1", 2, true), veth("eth1.100", 3, true)),
			nil, "vlanID: eth1.100 exists on the node and is a veth, not a VLAN"},
		{"VLAN name taken by a physical device", vlanConf(100, "eth1"), node(veth("eth1", 2, true), link{name: "eth1.100", index: 3, kind: kindDevice}),
			nil, "vlanID: eth1.100 exists on the node and is a physical device, not a VLAN"},
		{"VLAN of another parent", vlanConf(100, "eth1"), node(veth("eth1", 2, true), veth("eth2", 3, true), vlanLink("eth1.100", 4, 3, 100, true)),
			nil, "vlanID: eth1.100 exists on the node and is a VLAN of eth2, not of eth1"},
		{"VLAN of another ID", vlanConf(100, "eth1"), node(veth("eth1", 2, true), vlanLink("eth1.100", 3, 2, 200, true)),
			nil, "vlanID: eth1.100 exists on the node with VLAN ID 200, not 100"},
		{"VLAN 802.1ad", vlanConf(100, "eth1"), node(veth("eth1", 2, true), func() link { l := vlanLink("eth1.100", 3, 2, 100, true); l.vlanProto = 0x88a8; return l }()),
			nil, "vlanID: eth1.100 exists on the node as an 802.1ad (0x88a8) VLAN, not 802.1Q"},
		{"the parent has that VLAN under another name", vlanConf(100, "eth1"), node(veth("eth1", 2, true), vlanLink("vlan100", 3, 2, 100, true)),
			nil, "vlanID: eth1 already has VLAN 100 as vlan100; the main plugin expects it named eth1.100"},
		{"another parent's VLAN of the same ID is no obstacle", vlanConf(100, "eth1"), node(veth("eth1", 2, true), veth("eth2", 3, true), vlanLink("eth2.100", 4, 3, 100, true)),
			[]string{"create VLAN eth1.100 (id 100) on eth1", "set eth1.100 up"}, ""},

		{"bond made: members set down to be enslaved, MTU kept", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, true), veth("eth2", 3, false)),
			[]string{"create bond bond0 (mtu 9000)", "set eth1 down", "enslave eth1 to bond0", "set eth1 up", "enslave eth2 to bond0", "set eth2 up", "set bond0 up"}, ""},
		{"bond MTU is the smallest member's", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, false), func() link { l := veth("eth2", 3, false); l.mtu = 1500; return l }()),
			[]string{"create bond bond0 (mtu 1500)", "enslave eth1 to bond0", "set eth1 up", "enslave eth2 to bond0", "set eth2 up", "set bond0 up"}, ""},
		{"bond and VLAN made", bondConf(200, "eth1", "eth2"), node(veth("eth1", 2, false), veth("eth2", 3, false)),
			[]string{"create bond bond0 (mtu 9000)", "enslave eth1 to bond0", "set eth1 up", "enslave eth2 to bond0", "set eth2 up", "set bond0 up",
				"create VLAN bond0.200 (id 200) on bond0", "set bond0.200 up"}, ""},
		{"bond and VLAN exist: kept", bondConf(200, "eth1", "eth2"),
			node(enslaved(veth("eth1", 2, true), 4), enslaved(veth("eth2", 3, true), 4), bondLink("bond0", 4, 1, true), vlanLink("bond0.200", 5, 4, 200, true)), nil, ""},
		{"a member down in an existing bond is the administrator's", bondConf(0, "eth1", "eth2"),
			node(enslaved(veth("eth1", 2, true), 4), enslaved(veth("eth2", 3, false), 4), bondLink("bond0", 4, 1, true)), nil, ""},
		{"bond left half made: completed", bondConf(200, "eth1", "eth2"),
			node(enslaved(veth("eth1", 2, true), 4), veth("eth2", 3, true), bondLink("bond0", 4, 1, false)),
			[]string{"set eth2 down", "enslave eth2 to bond0", "set eth2 up", "set bond0 up", "create VLAN bond0.200 (id 200) on bond0", "set bond0.200 up"}, ""},
		{"bond name taken by a bridge", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, false), veth("eth2", 3, false), link{name: "bond0", index: 4, kind: "bridge"}),
			nil, "bond.name: bond0 exists on the node and is a bridge, not a bond"},
		{"bond in another mode", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, false), veth("eth2", 3, false), bondLink("bond0", 4, 4, true)),
			nil, "bond.mode: bond bond0 exists in mode 4 (802.3ad), the configuration asks for 1 (active-backup)"},
		{"member missing", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, false)), nil, "interfaces[1]: eth2 does not exist on the node"},
		{"member in a bridge", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, false), enslaved(veth("eth2", 3, true), 4), link{name: "br0", index: 4, kind: "bridge"}),
			nil, "interfaces[1]: eth2 is enslaved to br0, not to bond0"},
		{"member in another bond", bondConf(0, "eth1", "eth2"), node(enslaved(veth("eth1", 2, false), 4), veth("eth2", 3, false), bondLink("bond1", 4, 1, true)),
			nil, "interfaces[0]: eth1 is enslaved to bond1, not to bond0"},
		{"member the node uses", bondConf(0, "eth1", "eth2"), node(withAddr(veth("eth1", 2, true), "10.6.0.10/16"), veth("eth2", 3, false)),
			nil, "interfaces[0]: eth1 has address 10.6.0.10/16: berth-ifacer does not enslave an interface the node uses; move the address to bond0 or remove it"},
		{"member with an address, already in the bond: kept", bondConf(0, "eth1", "eth2"),
			node(withAddr(enslaved(veth("eth1", 2, true), 4), "10.6.0.10/16"), enslaved(veth("eth2", 3, true), 4), bondLink("bond0", 4, 1, true)), nil, ""},
		{"VLAN name taken, bond still to make", bondConf(200, "eth1", "eth2"), node(veth("eth1", 2, false), veth("eth2", 3, false), vlanLink("bond0.200", 4, 2, 200, true)),
			nil, "vlanID: bond0.200 exists on the node and is a VLAN of eth1, not of bond0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatalf("test configuration: %v", err)
			}
			steps, err := plan(tc.cfg, tc.st)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stepStrings(steps); !slices.Equal(got, tc.steps) {
				t.Errorf("steps\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.steps, "\n  "))
			}
		})
	}
}

func stepStrings(steps []step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.String())
	}
	return out
}

// CHECK reports what ADD would still do, in the words of what is missing.
func TestCheckMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *cniconf.IfacerConfig
		st   state
		want string // "" = passes
	}{
		{"all there", bondConf(200, "eth1", "eth2"),
			node(enslaved(veth("eth1", 2, true), 4), enslaved(veth("eth2", 3, true), 4), bondLink("bond0", 4, 1, true), vlanLink("bond0.200", 5, 4, 200, true)), ""},
		{"VLAN down", vlanConf(100, "eth1"), node(veth("eth1", 2, true), vlanLink("eth1.100", 3, 2, 100, false)), "eth1.100 is down"},
		{"VLAN gone", vlanConf(100, "eth1"), node(veth("eth1", 2, false)), "eth1 is down; eth1.100 does not exist"},
		{"member left the bond", bondConf(0, "eth1", "eth2"),
			node(enslaved(veth("eth1", 2, true), 4), veth("eth2", 3, false), bondLink("bond0", 4, 1, true)), "eth2 is not enslaved to bond0"},
		{"bond gone", bondConf(0, "eth1", "eth2"), node(veth("eth1", 2, true), veth("eth2", 3, true)),
			"bond0 does not exist; eth1 is not enslaved to bond0; eth2 is not enslaved to bond0"},
		{"replaced by something else", vlanConf(100, "eth1"), node(veth("eth1", 2, true), veth("eth1.100", 3, true)),
			"vlanID: eth1.100 exists on the node and is a veth, not a VLAN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.cfg, tc.st)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("CHECK says %v, want %q", err, tc.want)
			}
		})
	}
}
