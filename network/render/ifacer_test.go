package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// The berth-ifacer entry the renderer writes is what the plugin parses:
// the golden Networks with a bond or a VLAN round-trip through
// cniconf.ParseIfacerConfig, and the main plugin's master is the one the
// plugin makes.
func TestIfacerEntryParsesAsThePluginReadsIt(t *testing.T) {
	for _, tc := range goldenCases() {
		if len(tc.plugins) == 0 || tc.plugins[0] != cniconf.IfacerType {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			raw, err := Config(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Plugins []json.RawMessage `json:"plugins"`
			}
			if err := json.Unmarshal([]byte(raw), &list); err != nil {
				t.Fatal(err)
			}
			ifacer, err := cniconf.ParseIfacerConfig(list.Plugins[0])
			if err != nil {
				t.Fatalf("the rendered berth-ifacer entry is refused by the plugin's parser: %v\n%s", err, list.Plugins[0])
			}
			var main struct {
				Master string `json:"master"`
			}
			if err := json.Unmarshal(list.Plugins[1], &main); err != nil {
				t.Fatal(err)
			}
			if main.Master != ifacer.Master() {
				t.Errorf("main plugin master %q, berth-ifacer makes %q", main.Master, ifacer.Master())
			}
		})
	}
}

// What berth-ifacer would refuse on the node is refused when the Network is
// rendered, naming the Network's block and the plugin's field.
func TestIfacerRenderErrors(t *testing.T) {
	macvlan := func(mc berthv1.MasterConfig) berthv1.NetworkSpec {
		return berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: mc}}
	}
	ipvlan := func(mc berthv1.MasterConfig) berthv1.NetworkSpec {
		return berthv1.NetworkSpec{CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{MasterConfig: mc}}
	}
	bond := func(mode int32, options string) *berthv1.Bond {
		return &berthv1.Bond{Name: "bond0", Mode: mode, Options: options}
	}
	for _, tc := range []struct {
		name string
		spec berthv1.NetworkSpec
		want string
	}{
		{"unknown option", macvlan(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: bond(1, "miimon=100;speed=10")}),
			`spec.macvlan: the berth-ifacer configuration for the node: bond.options: unknown bonding option "speed"`},
		{"option of another mode", ipvlan(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: bond(0, "primary=eth1")}),
			"spec.ipvlan: the berth-ifacer configuration for the node: bond.options: primary: the kernel refuses it in mode 0 (balance-rr)"},
		{"primary not a member", macvlan(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: bond(1, "primary=eth3")}),
			`bond.options: primary: "eth3" is not one of the bonded interfaces`},
		{"bond mode", macvlan(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: bond(9, "")}),
			"bond.mode: 9 is outside 0 (balance-rr) to 6 (balance-alb)"},
		{"VLAN", macvlan(berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 4095}),
			"spec.macvlan: the berth-ifacer configuration for the node: vlanID: 4095 is outside 0-4094"},
		{"interface name", macvlan(berthv1.MasterConfig{Master: []string{"eth1", "eth 2"}, Bond: bond(1, "")}),
			`interfaces[1]: interface name "eth 2": ' ' is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NAD(Input{Network: nw("bad", tc.spec, nil)})
			if err == nil || !strings.HasPrefix(err.Error(), "network team-a/bad: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to name the network and contain %q", err, tc.want)
			}
		})
	}
}
