package validate

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network/render"
)

// settingsCases are coordinator settings at the edges of what
// berth-coordinator accepts; want is the error Settings must give, "" for
// none.
var settingsCases = []struct {
	name string
	s    berthv1.CoordinatorSettings
	want string
}{
	{"host table 1", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](1)}, ""},
	{"host table 252", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](252)}, ""},
	{"host table default", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](253)}, "hostRuleTable: Invalid value: 253 must be 1 to 4294967295 and not 253, 254 or 255"},
	{"host table main", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](254)}, "hostRuleTable: Invalid value: 254"},
	{"host table local", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](255)}, "hostRuleTable: Invalid value: 255"},
	{"host table 256", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](256)}, ""},
	{"host table max", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](1<<32 - 1)}, ""},
	{"host table 0", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](0)}, "hostRuleTable: Invalid value: 0"},
	{"host table too big", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](1 << 32)}, "hostRuleTable: Invalid value: 4294967296"},
	{"MAC prefix", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("0a:1b")}, ""},
	{"MAC prefix one byte", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("0A")}, ""},
	{"MAC prefix locally administered", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("02:00")}, ""},
	{"MAC prefix multicast", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("01:00")}, `podMACPrefix: Invalid value: "01:00" has the multicast bit set`},
	{"MAC prefix multicast upper", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("FF")}, `podMACPrefix: Invalid value: "FF"`},
	{"MAC prefix three bytes", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("0a:1b:2c")}, `podMACPrefix: Invalid value: "0a:1b:2c"`},
	{"veth", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("169.254.1.1")}, ""},
	{"veth IPv6", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("fe80::1")}, `vethLinkAddress: Invalid value: "fe80::1" is not an IPv4 address`},
	{"veth mapped IPv4", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("::ffff:169.254.1.1")}, `vethLinkAddress: Invalid value: "::ffff:169.254.1.1"`},
	{"veth before multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("223.255.255.255")}, `vethLinkAddress: Invalid value: "223.255.255.255" leaves no unicast address after it`},
	{"veth multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("239.255.255.254")}, `vethLinkAddress: Invalid value: "239.255.255.254"`},
	{"veth last multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("239.255.255.255")}, ""},
	{"veth before broadcast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("255.255.255.254")}, `vethLinkAddress: Invalid value: "255.255.255.254"`},
	{"veth broadcast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("255.255.255.255")}, `vethLinkAddress: Invalid value: "255.255.255.255"`},
	{"nic", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net1")}, ""},
	{"nic empty", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("")}, ""},
	{"nic with percent", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net%d")}, ""},
	{"nic with space", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net 1")}, `podDefaultRouteNIC: Invalid value: "net 1"`},
	{"nic with colon", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net:1")}, `podDefaultRouteNIC: Invalid value: "net:1"`},
	{"nic dot", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("..")}, `podDefaultRouteNIC: Invalid value: ".."`},
	{"nic not ASCII", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("nét1")}, `podDefaultRouteNIC: Invalid value: "nét1"`},
	{"nic control character", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net\x7f")}, `podDefaultRouteNIC: Invalid value: "net\x7f"`},
	{"nic too long", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net0123456789abc")}, "podDefaultRouteNIC: Too long"},
	{"rp_filter -1", berthv1.CoordinatorSettings{PodRPFilter: ptr.To[int32](-1), HostRPFilter: ptr.To[int32](2)}, ""},
	{"pod rp_filter -2", berthv1.CoordinatorSettings{PodRPFilter: ptr.To[int32](-2)}, "podRPFilter: Invalid value: -2"},
	{"host rp_filter 3", berthv1.CoordinatorSettings{HostRPFilter: ptr.To[int32](3)}, "hostRPFilter: Invalid value: 3"},
	{"txqueuelen", berthv1.CoordinatorSettings{TxQueueLen: ptr.To[int32](0)}, ""},
	{"txqueuelen negative", berthv1.CoordinatorSettings{TxQueueLen: ptr.To[int32](-1)}, "txQueueLen: Invalid value: -1"},
	{"mode", berthv1.CoordinatorSettings{Mode: ptr.To(berthv1.CoordinatorOverlay)}, ""},
	{"mode unknown", berthv1.CoordinatorSettings{Mode: ptr.To(berthv1.CoordinatorMode("l2"))}, `mode: Unsupported value: "l2"`},
	{"hijack", berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.1/8", "fd00::/8"}}, ""},
	{"hijack address", berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.0/8", "10.0.0.1"}}, `hijackCIDR[1]: Invalid value: "10.0.0.1"`},
	{"hijack too long a prefix", berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.0/33"}}, `hijackCIDR[0]: Invalid value: "10.0.0.0/33"`},
}

// TestSettings: each setting berth-coordinator refuses is refused with the
// field's path, and Settings agrees with the plugin on every case: what the
// NAD renderer makes of the settings passes cniconf's Resolve exactly when
// Settings finds nothing, so no Network is admitted whose every pod's ADD
// would fail.
func TestSettings(t *testing.T) {
	for _, tc := range settingsCases {
		t.Run(tc.name, func(t *testing.T) {
			errs := Settings(&tc.s, field.NewPath("spec", "coordinator"))
			if tc.want == "" && len(errs) > 0 {
				t.Errorf("refused: %v", errs.ToAggregate())
			}
			if tc.want != "" {
				if len(errs) == 0 {
					t.Errorf("accepted; want %q", tc.want)
				} else if got := errs.ToAggregate().Error(); !strings.Contains(got, "spec.coordinator."+tc.want) {
					t.Errorf("error %q\nwant it to contain %q", got, "spec.coordinator."+tc.want)
				}
			}
			nw := &berthv1.Network{Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: tc.s}}}
			cfg := render.Coordinator(nw, nil, "")
			_, err := cfg.Resolve()
			if (err == nil) != (len(errs) == 0) {
				t.Errorf("Settings says %v, berth-coordinator's Resolve says %v", errs.ToAggregate(), err)
			}
		})
	}
}
