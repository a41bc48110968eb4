package render

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

func pools() []berthv1.IPPool {
	return []berthv1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "storage-v6"}, Spec: berthv1.IPPoolSpec{Subnet: "fd00:6::/64", Gateway: ptr.To("fd00:6::1")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "storage-v4"}, Spec: berthv1.IPPoolSpec{
			Subnet:  "10.6.0.0/16",
			Gateway: ptr.To("10.6.0.1"),
			Routes:  []berthv1.Route{{Dst: "10.7.0.0/16"}, {Dst: "10.8.0.0/16", GW: ptr.To("10.6.0.254")}},
			DNS:     &berthv1.DNS{Nameservers: []string{"10.6.0.53"}, Search: []string{"storage.example"}},
		}},
	}
}

func coordinator() *berthv1.Coordinator {
	return &berthv1.Coordinator{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: berthv1.CoordinatorSpec{
			CoordinatorSettings: berthv1.CoordinatorSettings{
				Mode:             ptr.To(berthv1.CoordinatorAuto),
				HijackCIDRs:      []string{"169.254.25.10/32"},
				PodMACPrefix:     ptr.To("0a:1b"),
				HostRuleTable:    ptr.To[int64](500),
				DetectGateway:    ptr.To(true),
				DetectIPConflict: ptr.To(true),
			},
			PodCIDRType: berthv1.PodCIDRCluster,
		},
		Status: berthv1.CoordinatorStatus{
			Phase:        berthv1.CoordinatorSynced,
			PodCIDRs:     []string{"10.244.0.0/16", "fd00:10:244::/56"},
			ServiceCIDRs: []string{"10.96.0.0/16", "fd00:10:96::/112"},
		},
	}
}

func nw(name string, spec berthv1.NetworkSpec, annotations map[string]string) *berthv1.Network {
	return &berthv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Annotations: annotations},
		Spec:       spec,
	}
}

var storagePools = &berthv1.PoolSelection{IPv4: []string{"storage-v4"}, IPv6: []string{"storage-v6"}}

// goldenCases cover every cniType and the ways a Network shapes its chain.
func goldenCases() []struct {
	name    string
	in      Input
	plugins []string // plugin types in chain order
} {
	return []struct {
		name    string
		in      Input
		plugins []string
	}{
		{
			name: "macvlan",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeMacvlan,
				Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}, Mode: "bridge", MTU: 9000},
				IPPools: storagePools,
			}, nil), Pools: pools(), Coordinator: coordinator()},
			plugins: []string{"macvlan", "berth-coordinator"},
		},
		{
			name: "macvlan-vlan",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeMacvlan,
				Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 100}, Mode: "bridge"},
				IPPools: storagePools,
			}, nil), Pools: pools(), Coordinator: coordinator()},
			plugins: []string{"berth-ifacer", "macvlan", "berth-coordinator"},
		},
		{
			name: "macvlan-bond",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeMacvlan,
				Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{
					Master: []string{"eth1", "eth2"}, VLANID: 200,
					Bond: &berthv1.Bond{Name: "bond0", Mode: 1, Options: "primary=eth1;miimon=100"},
				}, Mode: "private"},
			}, nil), Pools: pools()[:1], Coordinator: coordinator()},
			plugins: []string{"berth-ifacer", "macvlan", "berth-coordinator"},
		},
		{
			name: "ipvlan-coordinator-override",
			in: Input{Network: nw("l3net", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeIPvlan,
				IPvlan:  &berthv1.IPvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"ens2f0"}}, Mode: "l3"},
				Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{
					Mode:               ptr.To(berthv1.CoordinatorOverlay),
					HijackCIDRs:        []string{"10.250.0.0/16"},
					PodDefaultRouteNIC: ptr.To("net1"),
					DetectGateway:      ptr.To(false),
					PodRPFilter:        ptr.To[int32](0),
				}},
			}, nil), Pools: pools(), Coordinator: coordinator(), NodeKubeconfig: "/etc/cni/net.d/berth.d/berth.kubeconfig"},
			plugins: []string{"ipvlan", "berth-coordinator"},
		},
		{
			name: "sriov",
			in: Input{Network: nw("fast", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeSRIOV,
				SRIOV: &berthv1.SRIOVConfig{
					ResourceName: "berth.io/sriov_netdevice", VLANID: 200, VLANQoS: 3,
					SpoofChk: "off", Trust: "on", MinTxRate: 100, MaxTxRate: 1000, LinkState: "enable",
				},
				IPPools: &berthv1.PoolSelection{IPv4: []string{"storage-v4"}},
			}, nil), Pools: pools()[1:], Coordinator: coordinator()},
			plugins: []string{"sriov", "berth-coordinator"},
		},
		{
			name: "sriov-untagged",
			in: Input{Network: nw("fast", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeSRIOV,
				SRIOV:   &berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice", VLANQoS: 3},
			}, nil), Coordinator: coordinator()},
			plugins: []string{"sriov", "berth-coordinator"},
		},
		{
			name: "ovs",
			in: Input{Network: nw("ovs", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeOVS,
				OVS: &berthv1.OVSConfig{Bridge: "br-phys", VLAN: 10, Trunk: []berthv1.Trunk{
					{ID: ptr.To[int32](20)}, {MinID: ptr.To[int32](100), MaxID: ptr.To[int32](199)},
				}},
			}, nil), Pools: pools(), Coordinator: coordinator()},
			plugins: []string{"ovs", "berth-coordinator"},
		},
		{
			name: "bridge",
			in: Input{Network: nw("lab", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeBridge,
				Bridge:  &berthv1.BridgeConfig{Bridge: "br0", VLAN: 30, IsGateway: true, MTU: 1450},
			}, nil), Pools: pools()[1:], Coordinator: coordinator()},
			plugins: []string{"bridge", "berth-coordinator"},
		},
		{
			name: "host-device",
			in: Input{Network: nw("dev", berthv1.NetworkSpec{
				CNIType:    berthv1.CNITypeHostDevice,
				HostDevice: &berthv1.HostDeviceConfig{Device: "ens5"},
			}, nil), Pools: pools()[1:], Coordinator: coordinator()},
			plugins: []string{"host-device", "berth-coordinator"},
		},
		{
			name: "host-device-pci",
			in: Input{Network: nw("dev", berthv1.NetworkSpec{
				CNIType:    berthv1.CNITypeHostDevice,
				HostDevice: &berthv1.HostDeviceConfig{PCIAddress: "0000:3b:00.1"},
			}, nil), Pools: pools()[1:], Coordinator: coordinator()},
			plugins: []string{"host-device", "berth-coordinator"},
		},
		{
			name: "custom-plugin",
			in: Input{Network: nw("vlan", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeCustom,
				Custom:  &berthv1.CustomConfig{Config: `{"cniVersion":"0.4.0","name":"user-name","type":"vlan","master":"eth0","vlanId":5,"linkInContainer":false}`},
			}, nil), Pools: pools()[1:], Coordinator: coordinator()},
			plugins: []string{"vlan", "berth-coordinator"},
		},
		{
			name: "custom-list",
			in: Input{Network: nw("tuned", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeCustom,
				Custom: &berthv1.CustomConfig{Config: `{"disableCheck": true, "plugins": [
					{"type": "macvlan", "master": "eth1", "capabilities": {"mac": true}, "ipam": {"type": "berth-ipam", "kubeconfig": "/etc/kube.conf"}},
					{"type": "berth-coordinator", "mode": "underlay"},
					{"type": "tuning", "sysctl": {"net.ipv4.conf.net1.arp_notify": "1"}}]}`},
			}, map[string]string{network.AnnotationCNIVersion: "1.1.0", nadv1.ResourceNameAnnotation: "vendor.com/nic"}), Pools: pools(), Coordinator: coordinator()},
			plugins: []string{"macvlan", "berth-coordinator", "tuning"},
		},
		{
			name: "custom-own-ipam",
			in: Input{Network: nw("dhcp", berthv1.NetworkSpec{
				CNIType:     berthv1.CNITypeCustom,
				Custom:      &berthv1.CustomConfig{Config: `{"type":"bridge","bridge":"br9","ipam":{"type":"dhcp"}}`},
				Coordinator: &berthv1.NetworkCoordinator{Disabled: true},
			}, nil)},
			plugins: []string{"bridge"},
		},
		{
			name: "annotations-no-coordinator",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType:     berthv1.CNITypeMacvlan,
				Macvlan:     &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}, Mode: "bridge"},
				Coordinator: &berthv1.NetworkCoordinator{Disabled: true},
			}, map[string]string{network.AnnotationNADName: "storage-nad", network.AnnotationCNIVersion: "0.4.0"}), Pools: pools(), Coordinator: coordinator()},
			plugins: []string{"macvlan"},
		},
		{
			name: "coordinator-mode-disabled",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeMacvlan,
				Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}, Mode: "bridge"},
				Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{
					Mode: ptr.To(berthv1.CoordinatorDisabled),
				}},
			}, nil), Coordinator: coordinator()},
			plugins: []string{"macvlan"},
		},
		{
			name: "no-coordinator-object",
			in: Input{Network: nw("storage", berthv1.NetworkSpec{
				CNIType: berthv1.CNITypeMacvlan,
				Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}, Mode: "bridge"},
			}, nil)},
			plugins: []string{"macvlan", "berth-coordinator"},
		},
	}
}

// TestGolden renders every case, compares it with testdata/<case>.json
// (rewritten with -update) and checks that libcni parses it into the
// expected chain.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			nad, err := NAD(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(golden, []byte(nad.Spec.Config+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if got := nad.Spec.Config + "\n"; got != string(want) {
				t.Errorf("config differs from %s (run with -update if the change is intended):\n%s", golden, got)
			}
			list, err := libcni.ConfListFromBytes([]byte(nad.Spec.Config))
			if err != nil {
				t.Fatalf("libcni does not parse the config: %v", err)
			}
			var types []string
			for _, p := range list.Plugins {
				types = append(types, p.Network.Type)
			}
			if !slices.Equal(types, tc.plugins) {
				t.Errorf("plugin chain %v, want %v", types, tc.plugins)
			}
			if list.Name != network.NADName(tc.in.Network) && tc.in.Network.Spec.CNIType != berthv1.CNITypeCustom {
				t.Errorf("list name %q, want the NAD name %q", list.Name, network.NADName(tc.in.Network))
			}
		})
	}
}

func TestNADMetadata(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			nad, err := NAD(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.in.Network
			if nad.Name != network.NADName(n) || nad.Namespace != n.Namespace {
				t.Errorf("NAD %s/%s, want %s/%s", nad.Namespace, nad.Name, n.Namespace, network.NADName(n))
			}
			if nad.Labels[network.LabelNetwork] != n.Name {
				t.Errorf("label %s = %q, want %q", network.LabelNetwork, nad.Labels[network.LabelNetwork], n.Name)
			}
			if nad.APIVersion != "k8s.cni.cncf.io/v1" || nad.Kind != "NetworkAttachmentDefinition" {
				t.Errorf("type meta %s %s", nad.APIVersion, nad.Kind)
			}
			want := ""
			switch tc.name {
			case "sriov", "sriov-untagged":
				want = "berth.io/sriov_netdevice"
			case "custom-list":
				want = "vendor.com/nic"
			}
			if got := nad.Annotations[nadv1.ResourceNameAnnotation]; got != want {
				t.Errorf("resourceName annotation %q, want %q", got, want)
			}
		})
	}
}

// TestCoordinatorMerge pins the precedence: the Network's settings over the
// Coordinator's, the Coordinator's CIDRs from its status.
func TestCoordinatorMerge(t *testing.T) {
	coord := coordinator()
	tests := []struct {
		name  string
		net   *berthv1.NetworkCoordinator
		coord *berthv1.Coordinator
		check func(t *testing.T, mode, nic string, gw *bool, hijack, pod []string)
	}{
		{
			name: "defaults only", coord: coord,
			check: func(t *testing.T, mode, nic string, gw *bool, hijack, pod []string) {
				if mode != "auto" || nic != "" || gw == nil || !*gw || !slices.Equal(hijack, []string{"169.254.25.10/32"}) || len(pod) != 2 {
					t.Errorf("mode %q nic %q gw %v hijack %v pod %v", mode, nic, gw, hijack, pod)
				}
			},
		},
		{
			name: "network overrides", coord: coord,
			net: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{
				Mode: ptr.To(berthv1.CoordinatorUnderlay), PodDefaultRouteNIC: ptr.To("net2"), DetectGateway: ptr.To(false), HijackCIDRs: []string{"1.2.3.0/24"},
			}},
			check: func(t *testing.T, mode, nic string, gw *bool, hijack, pod []string) {
				if mode != "underlay" || nic != "net2" || gw == nil || *gw || !slices.Equal(hijack, []string{"1.2.3.0/24"}) {
					t.Errorf("mode %q nic %q gw %v hijack %v", mode, nic, gw, hijack)
				}
			},
		},
		{
			name: "no coordinator",
			check: func(t *testing.T, mode, nic string, gw *bool, hijack, pod []string) {
				if mode != "auto" || gw != nil || hijack != nil || pod != nil {
					t.Errorf("mode %q gw %v hijack %v pod %v", mode, gw, hijack, pod)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := nw("n", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Coordinator: tc.net}, nil)
			c := Coordinator(n, tc.coord, "")
			if c.Type != "berth-coordinator" {
				t.Errorf("type %q", c.Type)
			}
			tc.check(t, c.Mode, c.PodDefaultRouteNIC, c.DetectGateway, c.HijackCIDRs, c.PodCIDRs)
		})
	}
	// The merge must not write through to the Coordinator it read.
	n := nw("n", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Coordinator: &berthv1.NetworkCoordinator{
		CoordinatorSettings: berthv1.CoordinatorSettings{DetectGateway: ptr.To(false)},
	}}, nil)
	_ = Coordinator(n, coord, "")
	if !*coord.Spec.DetectGateway {
		t.Error("rendering changed the Coordinator's spec")
	}
}

func TestRenderErrors(t *testing.T) {
	macvlan := func(mc berthv1.MasterConfig) berthv1.NetworkSpec {
		return berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: mc}}
	}
	custom := func(cfg string) berthv1.NetworkSpec {
		return berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: cfg}}
	}
	tests := []struct {
		name  string
		spec  berthv1.NetworkSpec
		annos map[string]string
		pools []berthv1.IPPool
		want  string
	}{
		{"missing block", berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV}, nil, nil, "spec.sriov is required when spec.cniType is sriov"},
		{"unknown type", berthv1.NetworkSpec{CNIType: "vxlan"}, nil, nil, `spec.cniType: unsupported value "vxlan"`},
		{"no master", macvlan(berthv1.MasterConfig{}), nil, nil, "spec.macvlan.master: a master interface is required"},
		{"two masters no bond", macvlan(berthv1.MasterConfig{Master: []string{"a", "b"}}), nil, nil, "spec.macvlan.bond: required when more than one master"},
		{"bad cni version", macvlan(berthv1.MasterConfig{Master: []string{"a"}}), map[string]string{network.AnnotationCNIVersion: "0.2.0"}, nil, `metadata.annotations[berth.io/cni-version]: cniVersion "0.2.0" is not one of`},
		{"host-device both", berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{Device: "a", PCIAddress: "0000:00:00.0"}}, nil, nil, "exactly one of device and pciAddress"},
		{"custom not json", custom(`{"type":`), nil, nil, "spec.custom.config: not a JSON object"},
		{"custom array", custom(`[1]`), nil, nil, "spec.custom.config: not a JSON object"},
		{"custom no type", custom(`{"master":"eth0"}`), nil, nil, `spec.custom.config: names no "type"`},
		{"custom list item no type", custom(`{"plugins":[{"type":"macvlan"},{"mode":"x"}]}`), nil, nil, "spec.custom.config: failed to parse plugin config 1"},
		{"custom empty list", custom(`{"plugins":[]}`), nil, nil, "spec.custom.config: error parsing configuration list: no plugins in list"},
		{"custom old version", custom(`{"cniVersion":"0.2.0","type":"macvlan"}`), nil, nil, `spec.custom.config: cniVersion "0.2.0" is not one of`},
		{"custom bad capabilities", custom(`{"type":"macvlan","capabilities":{"ips":"yes"}}`), nil, nil, "spec.custom.config: error parsing configuration"},
		{"custom trailing data", custom(`{"type":"macvlan"} {}`), nil, nil, "spec.custom.config: unexpected data after the JSON object"},
		{"pool bad gateway", macvlan(berthv1.MasterConfig{Master: []string{"a"}}), nil,
			[]berthv1.IPPool{{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", Gateway: ptr.To("10.1.0.1")}}},
			`ippool "p": spec.gateway "10.1.0.1" is not an address of 10.0.0.0/24`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NAD(Input{Network: nw("bad", tc.spec, tc.annos), Pools: tc.pools})
			if err == nil {
				t.Fatalf("rendered; want an error containing %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "network team-a/bad: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name the network and contain %q", err, tc.want)
			}
		})
	}
}

// TestCustomKeepsUserKeys: Berth completes a custom configuration, it does
// not rewrite what the user wrote.
func TestCustomKeepsUserKeys(t *testing.T) {
	n := nw("c", berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{
		Config: `{"type":"macvlan","master":"eth1","mtu":1500,"capabilities":{"mac":true},"ipam":{"type":"berth-ipam","kubeconfig":"/k"}}`,
	}}, nil)
	cfg, err := Config(Input{Network: n, Pools: pools(), Coordinator: coordinator()})
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Plugins []map[string]json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(cfg), &list); err != nil {
		t.Fatal(err)
	}
	main := list.Plugins[0]
	for key, want := range map[string]string{"master": `"eth1"`, "mtu": "1500", "capabilities": `{"ips":true,"mac":true}`} {
		var got any
		_ = json.Unmarshal(main[key], &got)
		compact, _ := json.Marshal(got)
		if string(compact) != want {
			t.Errorf("%s = %s, want %s", key, compact, want)
		}
	}
	var ipam map[string]any
	_ = json.Unmarshal(main["ipam"], &ipam)
	if ipam["kubeconfig"] != "/k" || ipam["type"] != "berth-ipam" || ipam["pools"] == nil {
		t.Errorf("ipam %v: want the user's kubeconfig kept and Berth's pools added", ipam)
	}
}

func TestPretty(t *testing.T) {
	got, err := Pretty(`{"a":[1,2],"b":{}}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if _, err := Pretty("{"); err == nil {
		t.Error("Pretty accepted broken JSON")
	}
}

// FuzzCustom feeds arbitrary documents as spec.custom.config: rendering
// either fails with an error or produces a configuration list libcni parses,
// whose first plugin is the user's and whose last is the coordinator.
func FuzzCustom(f *testing.F) {
	for _, seed := range []string{
		`{"type":"macvlan","master":"eth0"}`,
		`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"},{"type":"tuning"}]}`,
		`{"plugins":[{"type":"macvlan","ipam":{}}]}`,
		`{"type":"x","ipam":{"type":"dhcp"},"capabilities":{"mac":true}}`,
		`{"type":"x","ipam":[]}`,
		`{"plugins":[{"type":"berth-coordinator"}]}`,
		`{"type":""}`,
		`null`,
		`{"plugins":{}}`,
		`{"name":1,"type":"x"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n := nw("f", berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: raw}}, nil)
		cfg, err := Config(Input{Network: n, Pools: pools(), Coordinator: coordinator()})
		if err != nil {
			return
		}
		list, err := libcni.ConfListFromBytes([]byte(cfg))
		if err != nil {
			t.Fatalf("rendered a config libcni refuses: %v\n%s", err, cfg)
		}
		if len(list.Plugins) == 0 || list.Plugins[len(list.Plugins)-1].Network.Type != "berth-coordinator" {
			t.Fatalf("rendered chain does not end with berth-coordinator:\n%s", cfg)
		}
		if !network.CNIVersionSupported(list.CNIVersion) {
			t.Fatalf("rendered cniVersion %q", list.CNIVersion)
		}
	})
}
