package validate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
)

func macvlanSpec(mc berthv1.MasterConfig, mode string) berthv1.NetworkSpec {
	return berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: mc, Mode: mode}}
}

func customSpec(cfg string) berthv1.NetworkSpec {
	return berthv1.NetworkSpec{CNIType: berthv1.CNITypeCustom, Custom: &berthv1.CustomConfig{Config: cfg}}
}

func sriovSpec(c berthv1.SRIOVConfig) berthv1.NetworkSpec {
	return berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV, SRIOV: &c}
}

func obj(spec berthv1.NetworkSpec, annotations map[string]string) *berthv1.Network {
	return &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", Annotations: annotations}, Spec: spec}
}

// TestStatic: each bad Network is refused with a message naming the field;
// each good one passes.
func TestStatic(t *testing.T) {
	eth1 := berthv1.MasterConfig{Master: []string{"eth1"}}
	tests := []struct {
		name  string
		spec  berthv1.NetworkSpec
		annos map[string]string
		want  string // "" means valid
	}{
		{name: "macvlan", spec: macvlanSpec(eth1, "bridge")},
		{name: "macvlan defaulted mode", spec: macvlanSpec(eth1, "")},
		{name: "macvlan vlan and bond", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, VLANID: 4094, Bond: &berthv1.Bond{Name: "bond0", Mode: 4}}, "bridge")},
		{name: "ipvlan", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{MasterConfig: eth1, Mode: "l3s"}}},
		{name: "sriov", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice", VLANID: 10, VLANQoS: 7, SpoofChk: "on", Trust: "off", LinkState: "auto", MinTxRate: 10, MaxTxRate: 100})},
		{name: "ovs", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{Bridge: "br1", Trunk: []berthv1.Trunk{{ID: ptr.To[int32](5)}, {MinID: ptr.To[int32](1), MaxID: ptr.To[int32](4)}}}}},
		{name: "bridge", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeBridge, Bridge: &berthv1.BridgeConfig{Bridge: "br0", VLAN: 5, MTU: 1500}}},
		{name: "host-device pci", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{PCIAddress: "0000:3b:00.1"}}},
		{name: "custom list", spec: customSpec(`{"plugins":[{"type":"macvlan","master":"eth0"}]}`)},
		{name: "annotations", spec: macvlanSpec(eth1, "bridge"), annos: map[string]string{network.AnnotationNADName: "other-name", network.AnnotationCNIVersion: "0.4.0", network.AnnotationAdoptNAD: "true"}},

		{name: "missing master", spec: macvlanSpec(berthv1.MasterConfig{}, "bridge"), want: "spec.macvlan.master: Required value"},
		{name: "empty master name", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{""}}, "bridge"), want: "spec.macvlan.master[0]: Required value"},
		{name: "ipvlan missing master", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{}}, want: "spec.ipvlan.master: Required value"},
		{name: "master with slash", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth/1"}}, "bridge"), want: `spec.macvlan.master[0]: Invalid value: "eth/1": not a valid interface name`},
		{name: "master too long", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"enp129s0f0np0xyz"}}, "bridge"), want: "spec.macvlan.master[0]: Too long"},
		{name: "duplicate master", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1", "eth1"}, Bond: &berthv1.Bond{Name: "b"}}, "bridge"), want: `spec.macvlan.master[1]: Duplicate value: "eth1"`},
		{name: "vlanID too big", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 4095}, "bridge"), want: "spec.macvlan.vlanID: Invalid value: 4095: VLAN ID must be between 0 (untagged) and 4094"},
		{name: "vlanID negative", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: -1}, "bridge"), want: "spec.macvlan.vlanID: Invalid value: -1"},
		{name: "sub-interface too long", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"enp129s0f0np0"}, VLANID: 100}, "bridge"), want: `the VLAN sub-interface name "enp129s0f0np0.100" would be longer than 15 characters`},
		{name: "unknown macvlan mode", spec: macvlanSpec(eth1, "l2"), want: `spec.macvlan.mode: Unsupported value: "l2": supported values: "bridge", "private", "vepa", "passthru"`},
		{name: "unknown ipvlan mode", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{MasterConfig: eth1, Mode: "bridge"}}, want: `spec.ipvlan.mode: Unsupported value: "bridge"`},
		{name: "two masters no bond", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}}, "bridge"), want: "spec.macvlan.bond: Required value: required when more than one master is given"},
		{name: "bond mode", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1"}, Bond: &berthv1.Bond{Name: "bond0", Mode: 7}}, "bridge"), want: "spec.macvlan.bond.mode: Invalid value: 7"},
		{name: "bond option unknown", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: &berthv1.Bond{Name: "bond0", Mode: 1, Options: "miimon=100;speed=fast"}}, "bridge"), want: "spec.macvlan.bond.options: Invalid value: \"miimon=100;speed=fast\""},
		{name: "bond option of another mode", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1", "eth2"}, Bond: &berthv1.Bond{Name: "bond0", Mode: 1, Options: "lacp_rate=fast"}}, "bridge"), want: "spec.macvlan.bond.options"},
		{name: "bond named like member", spec: macvlanSpec(berthv1.MasterConfig{Master: []string{"eth1"}, Bond: &berthv1.Bond{Name: "eth1"}}, "bridge"), want: "spec.macvlan.bond.name: Invalid value: \"eth1\": the bond cannot have the name of one of its members"},
		{name: "mtu too small", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1, MTU: 60}}, want: "spec.macvlan.mtu: Invalid value: 60"},
		{name: "sriov without resourceName", spec: sriovSpec(berthv1.SRIOVConfig{}), want: "spec.sriov.resourceName: Required value"},
		{name: "sriov bad resourceName", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "a/b/c"}), want: `spec.sriov.resourceName: Invalid value: "a/b/c": not a resource name`},
		{name: "sriov qos", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "r", VLANQoS: 8}), want: "spec.sriov.vlanQoS: Invalid value: 8"},
		{name: "sriov spoofchk", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "r", SpoofChk: "yes"}), want: `spec.sriov.spoofchk: Unsupported value: "yes"`},
		{name: "sriov rates", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "r", MinTxRate: 100, MaxTxRate: 10}), want: "spec.sriov.minTxRate: Invalid value: 100: must not exceed maxTxRate (10)"},
		{name: "sriov link state", spec: sriovSpec(berthv1.SRIOVConfig{ResourceName: "r", LinkState: "up"}), want: `spec.sriov.linkState: Unsupported value: "up"`},
		{name: "ovs without bridge", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{}}, want: "spec.ovs.bridge: Required value"},
		{name: "ovs trunk both", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{Bridge: "b", Trunk: []berthv1.Trunk{{ID: ptr.To[int32](1), MinID: ptr.To[int32](1)}}}}, want: "spec.ovs.trunk[0]: Invalid value: \"\": either id or minID and maxID, not both"},
		{name: "ovs trunk half range", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{Bridge: "b", Trunk: []berthv1.Trunk{{MinID: ptr.To[int32](1)}}}}, want: "spec.ovs.trunk[0]: Required value: id, or both minID and maxID"},
		{name: "ovs trunk reversed", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeOVS, OVS: &berthv1.OVSConfig{Bridge: "b", Trunk: []berthv1.Trunk{{MinID: ptr.To[int32](9), MaxID: ptr.To[int32](1)}}}}, want: "spec.ovs.trunk[0].minID: Invalid value: 9: must not exceed maxID (1)"},
		{name: "bridge vlan", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeBridge, Bridge: &berthv1.BridgeConfig{Bridge: "br0", VLAN: 5000}}, want: "spec.bridge.vlan: Invalid value: 5000"},
		{name: "host-device none", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{}}, want: "spec.hostDevice: Required value: one of device and pciAddress"},
		{name: "host-device bad pci", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{PCIAddress: "3b:00.1"}}, want: `spec.hostDevice.pciAddress: Invalid value: "3b:00.1": must be a PCI address`},
		{name: "custom not JSON", spec: customSpec(`{"type": "macvlan",`), want: "spec.custom.config: Invalid value: not a JSON object"},
		{name: "custom names no type", spec: customSpec(`{"master": "eth0"}`), want: `spec.custom.config: Invalid value: names no "type"`},
		{name: "custom list entry without type", spec: customSpec(`{"plugins":[{"master":"eth0"}]}`), want: "spec.custom.config: Invalid value: failed to parse plugin config 0: error parsing configuration: missing 'type'"},
		{name: "custom empty", spec: customSpec("  "), want: "spec.custom.config: Required value"},
		{name: "custom old cniVersion", spec: customSpec(`{"cniVersion":"0.1.0","type":"macvlan"}`), want: `spec.custom.config: Invalid value: cniVersion "0.1.0" is not one of`},
		{name: "no cniType", spec: berthv1.NetworkSpec{}, want: "spec.cniType: Required value"},
		{name: "unknown cniType", spec: berthv1.NetworkSpec{CNIType: "vxlan"}, want: `spec.cniType: Unsupported value: "vxlan"`},
		{name: "block missing", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV}, want: "spec.sriov: Required value: spec.sriov is required when spec.cniType is sriov"},
		{name: "other block set", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, Bridge: &berthv1.BridgeConfig{Bridge: "b"}}, want: "spec.bridge: Forbidden: only the block named by spec.cniType (macvlan) may be set"},
		{name: "pool name", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, IPPools: &berthv1.PoolSelection{IPv6: []string{"Bad_Name"}}}, want: `spec.ippools.ipv6[0]: Invalid value: "Bad_Name": not an IPPool name`},
		{name: "pool twice", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, IPPools: &berthv1.PoolSelection{IPv4: []string{"a", "a"}}}, want: `spec.ippools.ipv4[1]: Duplicate value: "a"`},
		{name: "coordinator nic", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net 1")}}}, want: `spec.coordinator.podDefaultRouteNIC: Invalid value: "net 1"`},
		{name: "coordinator mode", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{Mode: ptr.To(berthv1.CoordinatorMode("l2"))}}}, want: `spec.coordinator.mode: Unsupported value: "l2"`},
		{name: "coordinator hijack", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.0/8", "10.0.0.1"}}}}, want: `spec.coordinator.hijackCIDR[1]: Invalid value: "10.0.0.1": must be a CIDR`},
		{name: "coordinator rp_filter", spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: eth1}, Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{HostRPFilter: ptr.To[int32](3)}}}, want: "spec.coordinator.hostRPFilter: Invalid value: 3"},
		{name: "bad nad name", spec: macvlanSpec(eth1, "bridge"), annos: map[string]string{network.AnnotationNADName: "Not_A_Name"}, want: `metadata.annotations[berth.io/nad-name]: Invalid value: "Not_A_Name": the NetworkAttachmentDefinition name a lowercase RFC 1123 subdomain`},
		{name: "bad cni version", spec: macvlanSpec(eth1, "bridge"), annos: map[string]string{network.AnnotationCNIVersion: "2.0.0"}, want: `metadata.annotations[berth.io/cni-version]: Unsupported value: "2.0.0": supported values: "0.3.1", "0.4.0", "1.0.0", "1.1.0"`},
		{name: "bad adopt value", spec: macvlanSpec(eth1, "bridge"), annos: map[string]string{network.AnnotationAdoptNAD: "yes"}, want: `metadata.annotations[berth.io/adopt-nad]: Unsupported value: "yes"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Static(obj(tc.spec, tc.annos))
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("refused a valid Network: %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error containing %q", tc.want)
			}
			if got := errs.ToAggregate().Error(); !strings.Contains(got, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", got, tc.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		spec berthv1.NetworkSpec
		want string
	}{
		{"qos without vlan", sriovSpec(berthv1.SRIOVConfig{ResourceName: "r", VLANQoS: 2}), "spec.sriov.vlanQoS is ignored without spec.sriov.vlanID"},
		{"foreign ipam", customSpec(`{"type":"macvlan","ipam":{"type":"dhcp"}}`), `spec.custom.config: the first plugin's IPAM is "dhcp", not berth-ipam: Berth reserves no addresses for this network's pods, that IPAM gives them theirs (spec.ippools and the IPPools serving the network are not used)`},
		{"mode with disabled", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Coordinator: &berthv1.NetworkCoordinator{Disabled: true, CoordinatorSettings: berthv1.CoordinatorSettings{Mode: ptr.To(berthv1.CoordinatorOverlay)}}}, "spec.coordinator.mode is ignored"},
		{"none", customSpec(`{"type":"macvlan","ipam":{}}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := Warnings(obj(tc.spec, nil))
			got := strings.Join(w, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("warnings %q, want %q", got, tc.want)
			}
		})
	}
}
