package render

import (
	"fmt"
	"strconv"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Main plugin type names, as their binaries are called in /opt/cni/bin.
const (
	macvlanType    = "macvlan"
	ipvlanType     = "ipvlan"
	sriovType      = "sriov"
	ovsType        = "ovs"
	bridgeType     = "bridge"
	hostDeviceType = "host-device"
)

// Runtime capabilities the main plugins declare, so that Multus hands them
// the pod's pre-assigned addresses ("ips", read by berth-ipam from the main
// plugin's stdin) and MAC ("mac") from the network selection element. Only
// plugins that honour runtimeConfig.mac declare "mac": ipvlan shares its
// master's MAC and host-device keeps the device's own.
var (
	ipsAndMAC = map[string]bool{"ips": true, "mac": true}
	ipsOnly   = map[string]bool{"ips": true}
)

type macvlanConf struct {
	Type         string             `json:"type"`
	Master       string             `json:"master"`
	Mode         string             `json:"mode,omitempty"`
	MTU          int32              `json:"mtu,omitempty"`
	Capabilities map[string]bool    `json:"capabilities,omitempty"`
	IPAM         cniconf.IPAMConfig `json:"ipam"`
}

type ipvlanConf = macvlanConf

// sriovConf follows the SR-IOV CNI's configuration; deviceID is filled in by
// Multus from the device plugin's allocation.
type sriovConf struct {
	Type         string             `json:"type"`
	VLAN         int32              `json:"vlan"`
	VLANQoS      int32              `json:"vlanQoS,omitempty"`
	SpoofChk     string             `json:"spoofchk,omitempty"`
	Trust        string             `json:"trust,omitempty"`
	LinkState    string             `json:"link_state,omitempty"`
	MinTxRate    *int32             `json:"min_tx_rate,omitempty"`
	MaxTxRate    *int32             `json:"max_tx_rate,omitempty"`
	Capabilities map[string]bool    `json:"capabilities,omitempty"`
	IPAM         cniconf.IPAMConfig `json:"ipam"`
}

type ovsTrunk struct {
	ID    *int32 `json:"id,omitempty"`
	MinID *int32 `json:"minID,omitempty"`
	MaxID *int32 `json:"maxID,omitempty"`
}

type ovsConf struct {
	Type         string             `json:"type"`
	Bridge       string             `json:"bridge"`
	VLAN         int32              `json:"vlan,omitempty"`
	Trunk        []ovsTrunk         `json:"trunk,omitempty"`
	DeviceID     string             `json:"deviceID,omitempty"`
	Capabilities map[string]bool    `json:"capabilities,omitempty"`
	IPAM         cniconf.IPAMConfig `json:"ipam"`
}

type bridgeConf struct {
	Type         string             `json:"type"`
	Bridge       string             `json:"bridge"`
	VLAN         int32              `json:"vlan,omitempty"`
	IsGateway    bool               `json:"isGateway,omitempty"`
	MTU          int32              `json:"mtu,omitempty"`
	Capabilities map[string]bool    `json:"capabilities,omitempty"`
	IPAM         cniconf.IPAMConfig `json:"ipam"`
}

type hostDeviceConf struct {
	Type         string             `json:"type"`
	Device       string             `json:"device,omitempty"`
	PCIBusID     string             `json:"pciBusID,omitempty"`
	Capabilities map[string]bool    `json:"capabilities,omitempty"`
	IPAM         cniconf.IPAMConfig `json:"ipam"`
}

// mainPlugins renders the plugins that come before the coordinator for every
// cniType but custom: berth-ifacer where a bond or VLAN sub-interface must
// exist on the node, then the main plugin.
func mainPlugins(nw *berthv1.Network, ipam cniconf.IPAMConfig) ([]any, error) {
	spec := &nw.Spec
	var confs []any
	switch spec.CNIType {
	case berthv1.CNITypeMacvlan:
		c := spec.Macvlan
		if c == nil {
			return nil, missingBlock("macvlan", spec.CNIType)
		}
		master, ifacer, err := masterFor("spec.macvlan", &c.MasterConfig)
		if err != nil {
			return nil, err
		}
		confs = append(confs, ifacer, macvlanConf{Type: macvlanType, Master: master, Mode: c.Mode, MTU: c.MTU, Capabilities: ipsAndMAC, IPAM: ipam})
	case berthv1.CNITypeIPvlan:
		c := spec.IPvlan
		if c == nil {
			return nil, missingBlock("ipvlan", spec.CNIType)
		}
		master, ifacer, err := masterFor("spec.ipvlan", &c.MasterConfig)
		if err != nil {
			return nil, err
		}
		confs = append(confs, ifacer, ipvlanConf{Type: ipvlanType, Master: master, Mode: c.Mode, MTU: c.MTU, Capabilities: ipsOnly, IPAM: ipam})
	case berthv1.CNITypeSRIOV:
		c := spec.SRIOV
		if c == nil {
			return nil, missingBlock("sriov", spec.CNIType)
		}
		// vlan is always written: 0 clears a VLAN a previous user of the VF
		// may have left on it.
		conf := sriovConf{Type: sriovType, VLAN: c.VLANID, SpoofChk: c.SpoofChk, Trust: c.Trust, LinkState: c.LinkState, Capabilities: ipsAndMAC, IPAM: ipam}
		if c.VLANID != 0 {
			conf.VLANQoS = c.VLANQoS
		}
		if c.MinTxRate > 0 {
			conf.MinTxRate = &c.MinTxRate
		}
		if c.MaxTxRate > 0 {
			conf.MaxTxRate = &c.MaxTxRate
		}
		confs = append(confs, conf)
	case berthv1.CNITypeOVS:
		c := spec.OVS
		if c == nil {
			return nil, missingBlock("ovs", spec.CNIType)
		}
		conf := ovsConf{Type: ovsType, Bridge: c.Bridge, VLAN: c.VLAN, DeviceID: c.DeviceID, Capabilities: ipsAndMAC, IPAM: ipam}
		for _, t := range c.Trunk {
			conf.Trunk = append(conf.Trunk, ovsTrunk{ID: t.ID, MinID: t.MinID, MaxID: t.MaxID})
		}
		confs = append(confs, conf)
	case berthv1.CNITypeBridge:
		c := spec.Bridge
		if c == nil {
			return nil, missingBlock("bridge", spec.CNIType)
		}
		confs = append(confs, bridgeConf{Type: bridgeType, Bridge: c.Bridge, VLAN: c.VLAN, IsGateway: c.IsGateway, MTU: c.MTU, Capabilities: ipsAndMAC, IPAM: ipam})
	case berthv1.CNITypeHostDevice:
		c := spec.HostDevice
		if c == nil {
			return nil, missingBlock("hostDevice", spec.CNIType)
		}
		if (c.Device == "") == (c.PCIAddress == "") {
			return nil, fmt.Errorf("spec.hostDevice: exactly one of device and pciAddress must be set")
		}
		confs = append(confs, hostDeviceConf{Type: hostDeviceType, Device: c.Device, PCIBusID: c.PCIAddress, Capabilities: ipsOnly, IPAM: ipam})
	default:
		return nil, fmt.Errorf("spec.cniType: unsupported value %q", spec.CNIType)
	}
	var plugins []any
	for _, c := range confs {
		if c == nil {
			continue
		}
		m, err := toMap(c)
		if err != nil {
			return nil, fmt.Errorf("encoding the %s plugin: %w", spec.CNIType, err)
		}
		plugins = append(plugins, m)
	}
	return plugins, nil
}

func missingBlock(field string, t berthv1.CNIType) error {
	return fmt.Errorf("spec.%s is required when spec.cniType is %s", field, t)
}

// Master is the interface name a macvlan or ipvlan plugin is given for mc:
// the bond's name with a bond, else the only master, followed by ".<vlanID>"
// when a VLAN is asked for.
func Master(mc *berthv1.MasterConfig) string {
	base := ""
	switch {
	case mc.Bond != nil:
		base = mc.Bond.Name
	case len(mc.Master) > 0:
		base = mc.Master[0]
	}
	if mc.VLANID != 0 {
		return base + "." + strconv.Itoa(int(mc.VLANID))
	}
	return base
}

// masterFor returns the master name and, when the node must build it, the
// berth-ifacer configuration (nil otherwise).
func masterFor(path string, mc *berthv1.MasterConfig) (string, any, error) {
	switch {
	case len(mc.Master) == 0 || mc.Master[0] == "":
		return "", nil, fmt.Errorf("%s.master: a master interface is required", path)
	case len(mc.Master) > 1 && mc.Bond == nil:
		return "", nil, fmt.Errorf("%s.bond: required when more than one master is given", path)
	}
	master := Master(mc)
	if mc.Bond == nil && mc.VLANID == 0 {
		return master, nil, nil
	}
	ifacer := cniconf.IfacerConfig{Type: cniconf.IfacerType, Interfaces: mc.Master, VLANID: mc.VLANID}
	if mc.Bond != nil {
		ifacer.Bond = &cniconf.IfacerBond{Name: mc.Bond.Name, Mode: mc.Bond.Mode, Options: mc.Bond.Options}
	}
	// The plugin runs the same validation on every ADD: a configuration it
	// would refuse is refused here, once, instead of failing every pod.
	if err := ifacer.Validate(); err != nil {
		return "", nil, fmt.Errorf("%s: the %s configuration for the node: %w", path, cniconf.IfacerType, err)
	}
	return master, ifacer, nil
}
