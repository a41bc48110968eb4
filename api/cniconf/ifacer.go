package cniconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// IfacerType is berth-ifacer: the chained plugin, first in a conflist, that
// makes the master a macvlan or ipvlan plugin expects exist on the node
// (Spiderpool's ifacer role). It bonds Interfaces, creates the VLAN
// sub-interface <bond or interface>.<vlanID>, brings them up, leaves
// interfaces that already exist as they are, and never deletes any.
const IfacerType = "berth-ifacer"

// MaxInterfaceName is the longest interface name Linux accepts, in bytes
// (IFNAMSIZ less its terminating NUL).
const MaxInterfaceName = 15

// MaxVLANID is the highest usable 802.1Q VLAN ID (4095 is reserved).
const MaxVLANID = 4094

// IfacerConfig is berth-ifacer's configuration, as the Network renderer
// writes it and the plugin reads it.
//
// It repeats the three fields of types.NetConf it needs rather than
// embedding it: NetConf's MarshalJSON has a pointer receiver, so embedded it
// would be promoted and json.Marshal(&cfg) would write the NetConf fields
// only, dropping interfaces, vlanID and bond.
type IfacerConfig struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type"`
	// Interfaces are the node's interfaces: the bond's members, or the one
	// parent of the VLAN sub-interface.
	Interfaces []string `json:"interfaces"`
	// VLANID, when not 0, asks for <bond or interface>.<VLANID>.
	VLANID int32 `json:"vlanID,omitempty"`
	// Bond, when set, asks for a bond of Interfaces.
	Bond *IfacerBond `json:"bond,omitempty"`
}

// IfacerBond describes the bond berth-ifacer creates.
type IfacerBond struct {
	Name string `json:"name"`
	// Mode is the bonding mode number, 0 (balance-rr) to 6 (balance-alb).
	Mode int32 `json:"mode"`
	// Options are further bonding options as the kernel names them
	// (ip-link(8), Documentation/networking/bonding.rst), "key=value"
	// separated by ";": "miimon=100;primary=eth1".
	Options string `json:"options,omitempty"`
}

// ParseIfacerConfig decodes and validates a berth-ifacer configuration.
func ParseIfacerConfig(data []byte) (*IfacerConfig, error) {
	c := &IfacerConfig{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decoding the %s configuration: %w", IfacerType, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the configuration the way the kernel will judge it, so a
// Network that could never work fails when it is rendered rather than in
// every pod's ADD. Errors name the field.
func (c *IfacerConfig) Validate() error {
	if c.Type != IfacerType {
		return fmt.Errorf("type: %q, expected %q", c.Type, IfacerType)
	}
	if len(c.Interfaces) == 0 {
		return errors.New("interfaces: must name at least one interface of the node")
	}
	seen := map[string]int{}
	for i, name := range c.Interfaces {
		if err := ValidateInterfaceName(name); err != nil {
			return fmt.Errorf("interfaces[%d]: %w", i, err)
		}
		if j, dup := seen[name]; dup {
			return fmt.Errorf("interfaces[%d]: %q is interfaces[%d] again", i, name, j)
		}
		seen[name] = i
	}
	if c.VLANID < 0 || c.VLANID > MaxVLANID {
		return fmt.Errorf("vlanID: %d is outside 0-%d (0 means no VLAN)", c.VLANID, MaxVLANID)
	}
	if c.Bond == nil {
		if len(c.Interfaces) > 1 {
			return fmt.Errorf("bond: required with more than one interface (%d given): berth-ifacer bonds them", len(c.Interfaces))
		}
	} else if err := c.Bond.validate(c.Interfaces); err != nil {
		return fmt.Errorf("bond.%w", err)
	}
	if name := c.Master(); len(name) > MaxInterfaceName {
		return fmt.Errorf("vlanID: the sub-interface name %q is longer than %d bytes; use a shorter bond or interface name", name, MaxInterfaceName)
	}
	return nil
}

// Parent is the interface the VLAN sub-interface goes on, and the master
// when there is no VLAN: the bond, else the only interface.
func (c *IfacerConfig) Parent() string {
	if c.Bond != nil {
		return c.Bond.Name
	}
	if len(c.Interfaces) > 0 {
		return c.Interfaces[0]
	}
	return ""
}

// Master is the interface the main plugin is given: Parent, followed by
// ".<vlanID>" when a VLAN is asked for.
func (c *IfacerConfig) Master() string {
	if c.VLANID != 0 {
		return c.Parent() + "." + strconv.Itoa(int(c.VLANID))
	}
	return c.Parent()
}

func (b *IfacerBond) validate(interfaces []string) error {
	if err := ValidateInterfaceName(b.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if slices.Contains(interfaces, b.Name) {
		return fmt.Errorf("name: %q is also one of the interfaces it bonds", b.Name)
	}
	if b.Mode < 0 || b.Mode > 6 {
		return fmt.Errorf("mode: %d is outside 0 (balance-rr) to 6 (balance-alb)", b.Mode)
	}
	_, err := b.ParseOptions(interfaces)
	return err
}

// ValidateInterfaceName checks name the way the kernel's dev_valid_name
// does, and refuses "%" too: the kernel would take it as a template
// ("eth%d") and pick the name itself.
func ValidateInterfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("an interface name must not be empty")
	case len(name) > MaxInterfaceName:
		return fmt.Errorf("interface name %q is longer than %d bytes", name, MaxInterfaceName)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b <= ' ' || b == 0x7f || b == '/' || b == ':' || b == '%' {
			return fmt.Errorf("interface name %q: %q is not allowed (no whitespace, control characters, '/', ':' or '%%')", name, b)
		}
	}
	return nil
}

// BondModeName is the kernel's name of a bonding mode number.
func BondModeName(mode int32) string {
	names := [...]string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}
	if mode < 0 || int(mode) >= len(names) {
		return "mode " + strconv.Itoa(int(mode))
	}
	return names[mode]
}

// Bonding modes the option rules refer to.
const (
	BondModeBalanceRR    int32 = 0
	BondModeActiveBackup int32 = 1
	BondMode8023AD       int32 = 4
	BondModeBalanceTLB   int32 = 5
	BondModeBalanceALB   int32 = 6
)

// BondOption is one option of IfacerBond.Options, checked and resolved to
// the value netlink carries.
type BondOption struct {
	// Name is the kernel's name of the option; the alias num_grat_arp is
	// reported as num_unsol_na, the option it sets.
	Name string
	// Raw is the value as written.
	Raw string
	// Int is the value of a numeric or enumerated option: "layer3+4"
	// gives 1, as in the kernel's table.
	Int int
	// Interface is primary's value.
	Interface string
	// IPs are arp_ip_target's addresses.
	IPs []netip.Addr
	// MAC is ad_actor_system's address.
	MAC net.HardwareAddr
}

// Bonding options berth-ifacer sets through netlink, by kernel name.
const (
	BondOptMiimon          = "miimon"
	BondOptUpDelay         = "updelay"
	BondOptDownDelay       = "downdelay"
	BondOptUseCarrier      = "use_carrier"
	BondOptARPInterval     = "arp_interval"
	BondOptARPIPTarget     = "arp_ip_target"
	BondOptARPValidate     = "arp_validate"
	BondOptARPAllTargets   = "arp_all_targets"
	BondOptPrimary         = "primary"
	BondOptPrimaryReselect = "primary_reselect"
	BondOptFailOverMAC     = "fail_over_mac"
	BondOptXmitHashPolicy  = "xmit_hash_policy"
	BondOptResendIGMP      = "resend_igmp"
	BondOptNumPeerNotif    = "num_unsol_na"
	BondOptAllSlavesActive = "all_slaves_active"
	BondOptMinLinks        = "min_links"
	BondOptLPInterval      = "lp_interval"
	BondOptPacketsPerSlave = "packets_per_slave"
	BondOptLACPRate        = "lacp_rate"
	BondOptADSelect        = "ad_select"
	BondOptADActorSysPrio  = "ad_actor_sys_prio"
	BondOptADUserPortKey   = "ad_user_port_key"
	BondOptADActorSystem   = "ad_actor_system"
	BondOptTLBDynamicLB    = "tlb_dynamic_lb"
)

// BondOptionNames lists the options ParseOptions accepts, by kernel name
// (plus the alias num_grat_arp).
func BondOptionNames() []string {
	return []string{
		BondOptMiimon, BondOptUpDelay, BondOptDownDelay, BondOptUseCarrier,
		BondOptARPInterval, BondOptARPIPTarget, BondOptARPValidate, BondOptARPAllTargets,
		BondOptPrimary, BondOptPrimaryReselect, BondOptFailOverMAC, BondOptXmitHashPolicy,
		BondOptResendIGMP, BondOptNumPeerNotif, "num_grat_arp", BondOptAllSlavesActive,
		BondOptMinLinks, BondOptLPInterval, BondOptPacketsPerSlave, BondOptLACPRate,
		BondOptADSelect, BondOptADActorSysPrio, BondOptADUserPortKey, BondOptADActorSystem,
		BondOptTLBDynamicLB,
	}
}

type bondValueKind int

const (
	bondInt bondValueKind = iota
	bondEnum
	bondIface
	bondIPv4List
	bondMAC
)

// bondOptSpec is how the kernel (drivers/net/bonding/bond_options.c) takes
// one option: its range or table of names, and the modes it is refused in
// (EACCES, "mode dependency failed").
type bondOptSpec struct {
	name     string
	kind     bondValueKind
	min, max int
	names    map[string]int
	modes    []int32 // nil: every mode
}

const intMax = 1<<31 - 1

// maxARPTargets is the kernel's BOND_MAX_ARP_TARGETS.
const maxARPTargets = 16

// bondOptionSpec returns the rules of option key, or an error saying why
// berth-ifacer does not take it.
func bondOptionSpec(key string) (bondOptSpec, error) {
	onOff := map[string]int{"off": 0, "on": 1}
	noARP := []int32{0, 1, 2, 3} // arp monitoring is refused in 802.3ad, balance-tlb and balance-alb
	switch key {
	case BondOptMiimon, BondOptUpDelay, BondOptDownDelay, BondOptMinLinks:
		return bondOptSpec{name: key, kind: bondInt, max: intMax}, nil
	case BondOptARPInterval:
		return bondOptSpec{name: key, kind: bondInt, max: intMax, modes: noARP}, nil
	case BondOptUseCarrier, BondOptAllSlavesActive:
		return bondOptSpec{name: key, kind: bondEnum, names: onOff}, nil
	case BondOptARPIPTarget:
		return bondOptSpec{name: key, kind: bondIPv4List}, nil
	case BondOptARPValidate:
		return bondOptSpec{name: key, kind: bondEnum, modes: noARP, names: map[string]int{
			"none": 0, "active": 1, "backup": 2, "all": 3, "filter": 4, "filter_active": 5, "filter_backup": 6}}, nil
	case BondOptARPAllTargets:
		return bondOptSpec{name: key, kind: bondEnum, names: map[string]int{"any": 0, "all": 1}}, nil
	case BondOptPrimary:
		return bondOptSpec{name: key, kind: bondIface, modes: []int32{BondModeActiveBackup, BondModeBalanceTLB, BondModeBalanceALB}}, nil
	case BondOptPrimaryReselect:
		return bondOptSpec{name: key, kind: bondEnum, names: map[string]int{"always": 0, "better": 1, "failure": 2}}, nil
	case BondOptFailOverMAC:
		return bondOptSpec{name: key, kind: bondEnum, names: map[string]int{"none": 0, "active": 1, "follow": 2}}, nil
	case BondOptXmitHashPolicy:
		return bondOptSpec{name: key, kind: bondEnum, names: map[string]int{
			"layer2": 0, "layer3+4": 1, "layer2+3": 2, "encap2+3": 3, "encap3+4": 4, "vlan+srcmac": 5}}, nil
	case BondOptResendIGMP:
		return bondOptSpec{name: key, kind: bondInt, max: 255}, nil
	case BondOptNumPeerNotif, "num_grat_arp":
		return bondOptSpec{name: BondOptNumPeerNotif, kind: bondInt, max: 255}, nil
	case BondOptLPInterval:
		return bondOptSpec{name: key, kind: bondInt, min: 1, max: intMax}, nil
	case BondOptPacketsPerSlave:
		return bondOptSpec{name: key, kind: bondInt, max: 65535, modes: []int32{BondModeBalanceRR}}, nil
	case BondOptLACPRate:
		return bondOptSpec{name: key, kind: bondEnum, modes: []int32{BondMode8023AD}, names: map[string]int{"slow": 0, "fast": 1}}, nil
	case BondOptADSelect:
		return bondOptSpec{name: key, kind: bondEnum, names: map[string]int{"stable": 0, "bandwidth": 1, "count": 2}}, nil
	case BondOptADActorSysPrio:
		return bondOptSpec{name: key, kind: bondInt, min: 1, max: 65535, modes: []int32{BondMode8023AD}}, nil
	case BondOptADUserPortKey:
		return bondOptSpec{name: key, kind: bondInt, max: 1023, modes: []int32{BondMode8023AD}}, nil
	case BondOptADActorSystem:
		return bondOptSpec{name: key, kind: bondMAC, modes: []int32{BondMode8023AD}}, nil
	case BondOptTLBDynamicLB:
		return bondOptSpec{name: key, kind: bondEnum, names: onOff, modes: []int32{BondModeBalanceTLB, BondModeBalanceALB}}, nil
	case "mode":
		return bondOptSpec{}, errors.New("mode is bond.mode, not an option")
	case "slaves":
		return bondOptSpec{}, errors.New("slaves are the interfaces list, not an option")
	case "active_slave":
		return bondOptSpec{}, errors.New("active_slave is chosen at run time and needs enslaved interfaces: set primary instead")
	case "queue_id", "prio":
		return bondOptSpec{}, fmt.Errorf("%s is a per-interface setting berth-ifacer does not set", key)
	case "peer_notif_delay", "lacp_active", "arp_missed_max", "ns_ip6_target", "coupled_control":
		return bondOptSpec{}, fmt.Errorf("%s is a bonding option berth-ifacer cannot set (its netlink library does not carry it)", key)
	default:
		return bondOptSpec{}, fmt.Errorf("unknown bonding option %q", key)
	}
}

// ParseOptions parses Options against the bond's mode and members: each
// option known to the kernel and settable by netlink, in range, allowed in
// the mode, given once, and the combinations the kernel refuses (updelay
// without MII monitoring, MII and ARP monitoring together) refused here.
// Items may be padded with spaces and a trailing ";" is ignored.
func (b *IfacerBond) ParseOptions(interfaces []string) ([]BondOption, error) {
	var out []BondOption
	given := map[string]bool{}
	for _, item := range strings.Split(b.Options, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || key == "" || val == "" {
			return nil, fmt.Errorf("options: %q is not key=value (the form is \"key=value;key=value\")", item)
		}
		spec, err := bondOptionSpec(key)
		if err != nil {
			return nil, fmt.Errorf("options: %w", err)
		}
		if given[spec.name] {
			if spec.name != key {
				return nil, fmt.Errorf("options: %s is given twice (%s is another name of %s)", spec.name, key, spec.name)
			}
			return nil, fmt.Errorf("options: %s is given twice", key)
		}
		given[spec.name] = true
		if spec.modes != nil && !slices.Contains(spec.modes, b.Mode) {
			return nil, fmt.Errorf("options: %s: the kernel refuses it in mode %d (%s); it applies to %s", key, b.Mode, BondModeName(b.Mode), modeList(spec.modes))
		}
		o, err := spec.parse(val, interfaces)
		if err != nil {
			return nil, fmt.Errorf("options: %s: %w", key, err)
		}
		out = append(out, o)
	}
	if err := checkBondCombination(b.Mode, out); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	return out, nil
}

func (s bondOptSpec) parse(val string, interfaces []string) (BondOption, error) {
	o := BondOption{Name: s.name, Raw: val}
	switch s.kind {
	case bondInt:
		n, err := strconv.Atoi(val)
		if err != nil || n < s.min || n > s.max {
			return o, fmt.Errorf("%q is not a number from %d to %d", val, s.min, s.max)
		}
		o.Int = n
	case bondEnum:
		if n, ok := s.names[val]; ok {
			o.Int = n
			return o, nil
		}
		// The kernel takes a table's numbers as well as its names.
		n, err := strconv.Atoi(val)
		if err != nil || !slices.Contains(mapValues(s.names), n) {
			return o, fmt.Errorf("%q is none of %s", val, enumList(s.names))
		}
		o.Int = n
	case bondIface:
		if !slices.Contains(interfaces, val) {
			return o, fmt.Errorf("%q is not one of the bonded interfaces %v", val, interfaces)
		}
		o.Interface = val
	case bondIPv4List:
		for _, a := range strings.Split(val, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil || !ip.Is4() {
				return o, fmt.Errorf("%q is not an IPv4 address (targets are separated by \",\")", a)
			}
			// The kernel's bond_is_ip_target_ok.
			if ip.IsMulticast() || ip.IsUnspecified() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
				return o, fmt.Errorf("%s cannot be an ARP target (multicast, broadcast or 0.0.0.0)", ip)
			}
			if slices.Contains(o.IPs, ip) {
				return o, fmt.Errorf("%s is listed twice", ip)
			}
			o.IPs = append(o.IPs, ip)
		}
		if len(o.IPs) > maxARPTargets {
			return o, fmt.Errorf("%d targets, the kernel takes at most %d", len(o.IPs), maxARPTargets)
		}
	case bondMAC:
		mac, err := net.ParseMAC(val)
		if err != nil || len(mac) != 6 {
			return o, fmt.Errorf("%q is not an Ethernet MAC address", val)
		}
		// The kernel's is_valid_ether_addr: unicast and not all zero.
		if mac[0]&1 == 1 || slices.Equal(mac, make(net.HardwareAddr, 6)) {
			return o, fmt.Errorf("%s is not a unicast address", mac)
		}
		o.MAC = mac
	}
	return o, nil
}

// checkBondCombination refuses what the kernel refuses (or silently undoes)
// across options. Netlink applies miimon before updelay, downdelay and
// arp_interval, so the order options are written in does not matter.
func checkBondCombination(mode int32, opts []BondOption) error {
	value := map[string]int{}
	for _, o := range opts {
		value[o.Name] = o.Int
	}
	miimon, hasMiimon := value[BondOptMiimon]
	// Setting 802.3ad, balance-tlb or balance-alb turns MII monitoring on
	// (100 ms) when it is off.
	if !hasMiimon && (mode == BondMode8023AD || mode == BondModeBalanceTLB || mode == BondModeBalanceALB) {
		miimon = 100
	}
	for _, delay := range []string{BondOptUpDelay, BondOptDownDelay} {
		if _, ok := value[delay]; ok && miimon == 0 {
			return fmt.Errorf("%s needs miimon above 0: the kernel counts it in MII monitoring intervals", delay)
		}
	}
	if arp := value[BondOptARPInterval]; arp > 0 && miimon > 0 && hasMiimon {
		return fmt.Errorf("miimon and arp_interval exclude each other: the kernel keeps only the one set last")
	}
	return nil
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// enumList names a table's values in their numeric order: "slow (0), fast (1)".
func enumList(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var items []kv
	for k, v := range m {
		items = append(items, kv{k, v})
	}
	slices.SortFunc(items, func(a, b kv) int { return a.v - b.v })
	var parts []string
	for _, it := range items {
		parts = append(parts, fmt.Sprintf("%s (%d)", it.k, it.v))
	}
	return strings.Join(parts, ", ")
}

func modeList(modes []int32) string {
	var parts []string
	for _, m := range modes {
		parts = append(parts, fmt.Sprintf("%d (%s)", m, BondModeName(m)))
	}
	return "mode " + strings.Join(parts, ", ")
}
