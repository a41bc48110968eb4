// Package validate decides whether a Network is acceptable: Static checks the
// object alone (the controller runs it too, so a Network that slipped past a
// down webhook is reported, not rendered), and Validator adds what needs the
// cluster (its pools, the other Networks) for the validating webhook.
package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/network/render"
)

// Linux limits an interface name to IFNAMSIZ-1 bytes.
const maxIfaceName = 15

var (
	macvlanModes   = []string{"bridge", "private", "vepa", "passthru"}
	ipvlanModes    = []string{"l2", "l3", "l3s"}
	onOff          = []string{"on", "off"}
	linkStates     = []string{"auto", "enable", "disable"}
	cniTypes       = []string{"macvlan", "ipvlan", "sriov", "ovs", "bridge", "host-device", "custom"}
	coordModes     = []string{"auto", "underlay", "overlay", "disabled"}
	pciAddress     = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)
	blockOfCNIType = map[berthv1.CNIType]string{
		berthv1.CNITypeMacvlan: "macvlan", berthv1.CNITypeIPvlan: "ipvlan", berthv1.CNITypeSRIOV: "sriov",
		berthv1.CNITypeOVS: "ovs", berthv1.CNITypeBridge: "bridge", berthv1.CNITypeHostDevice: "hostDevice",
		berthv1.CNITypeCustom: "custom",
	}
)

// Static checks everything about nw that needs no other object, returning
// one error per bad field with its path. The CRD's schema already refuses
// much of this; checking again here makes the rules hold where the schema is
// bypassed or older, and lets the controller refuse to render bad input.
func Static(nw *berthv1.Network) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, annotations(nw)...)
	spec := field.NewPath("spec")
	errs = append(errs, blocks(nw, spec)...)
	switch nw.Spec.CNIType {
	case berthv1.CNITypeMacvlan:
		if c := nw.Spec.Macvlan; c != nil {
			p := spec.Child("macvlan")
			errs = append(errs, masters(&c.MasterConfig, p)...)
			errs = append(errs, oneOf(p.Child("mode"), c.Mode, macvlanModes, true)...)
			errs = append(errs, mtu(p.Child("mtu"), c.MTU)...)
		}
	case berthv1.CNITypeIPvlan:
		if c := nw.Spec.IPvlan; c != nil {
			p := spec.Child("ipvlan")
			errs = append(errs, masters(&c.MasterConfig, p)...)
			errs = append(errs, oneOf(p.Child("mode"), c.Mode, ipvlanModes, true)...)
			errs = append(errs, mtu(p.Child("mtu"), c.MTU)...)
		}
	case berthv1.CNITypeSRIOV:
		if c := nw.Spec.SRIOV; c != nil {
			errs = append(errs, sriov(c, spec.Child("sriov"))...)
		}
	case berthv1.CNITypeOVS:
		if c := nw.Spec.OVS; c != nil {
			errs = append(errs, ovs(c, spec.Child("ovs"))...)
		}
	case berthv1.CNITypeBridge:
		if c := nw.Spec.Bridge; c != nil {
			p := spec.Child("bridge")
			errs = append(errs, ifaceName(p.Child("bridge"), c.Bridge, true)...)
			errs = append(errs, vlan(p.Child("vlan"), c.VLAN)...)
			errs = append(errs, mtu(p.Child("mtu"), c.MTU)...)
		}
	case berthv1.CNITypeHostDevice:
		if c := nw.Spec.HostDevice; c != nil {
			errs = append(errs, hostDevice(c, spec.Child("hostDevice"))...)
		}
	case berthv1.CNITypeCustom:
		if c := nw.Spec.Custom; c != nil {
			errs = append(errs, custom(nw, spec.Child("custom", "config"))...)
		}
	}
	errs = append(errs, poolNames(nw.Spec.IPPools, spec.Child("ippools"))...)
	if c := nw.Spec.Coordinator; c != nil {
		errs = append(errs, Settings(&c.CoordinatorSettings, spec.Child("coordinator"))...)
	}
	return errs
}

func annotations(nw *berthv1.Network) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("metadata", "annotations")
	if v, ok := nw.Annotations[network.AnnotationNADName]; ok {
		for _, msg := range content.IsDNS1123Subdomain(v) {
			errs = append(errs, field.Invalid(p.Key(network.AnnotationNADName), v, "the NetworkAttachmentDefinition name "+msg))
		}
	}
	if v, ok := nw.Annotations[network.AnnotationCNIVersion]; ok && !network.CNIVersionSupported(v) {
		errs = append(errs, field.NotSupported(p.Key(network.AnnotationCNIVersion), v, network.SupportedCNIVersions()))
	}
	if v, ok := nw.Annotations[network.AnnotationAdoptNAD]; ok && v != "true" && v != "false" {
		errs = append(errs, field.NotSupported(p.Key(network.AnnotationAdoptNAD), v, []string{"true", "false"}))
	}
	return errs
}

// blocks checks that cniType is known, that its block is set and that no
// other block is.
func blocks(nw *berthv1.Network, spec *field.Path) field.ErrorList {
	s := &nw.Spec
	set := map[string]bool{
		"macvlan": s.Macvlan != nil, "ipvlan": s.IPvlan != nil, "sriov": s.SRIOV != nil, "ovs": s.OVS != nil,
		"bridge": s.Bridge != nil, "hostDevice": s.HostDevice != nil, "custom": s.Custom != nil,
	}
	want, known := blockOfCNIType[s.CNIType]
	var errs field.ErrorList
	switch {
	case s.CNIType == "":
		errs = append(errs, field.Required(spec.Child("cniType"), "one of "+strings.Join(cniTypes, ", ")))
	case !known:
		errs = append(errs, field.NotSupported(spec.Child("cniType"), s.CNIType, cniTypes))
	case !set[want]:
		errs = append(errs, field.Required(spec.Child(want), fmt.Sprintf("spec.%s is required when spec.cniType is %s", want, s.CNIType)))
	}
	for _, b := range []string{"macvlan", "ipvlan", "sriov", "ovs", "bridge", "hostDevice", "custom"} {
		if set[b] && b != want {
			errs = append(errs, field.Forbidden(spec.Child(b), fmt.Sprintf("only the block named by spec.cniType (%s) may be set", s.CNIType)))
		}
	}
	return errs
}

// masters checks the parent interfaces of macvlan and ipvlan, including the
// name the plugin will be given: "<bond or master>.<vlanID>" must still fit
// in an interface name, or the node could never create it.
func masters(mc *berthv1.MasterConfig, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	mp := p.Child("master")
	if len(mc.Master) == 0 {
		errs = append(errs, field.Required(mp, "the node interface(s) the plugin attaches to, e.g. [\"eth1\"]"))
	}
	for i, m := range mc.Master {
		errs = append(errs, ifaceName(mp.Index(i), m, true)...)
		if slices.Index(mc.Master, m) < i {
			errs = append(errs, field.Duplicate(mp.Index(i), m))
		}
	}
	errs = append(errs, vlan(p.Child("vlanID"), mc.VLANID)...)
	if b := mc.Bond; b != nil {
		bp := p.Child("bond")
		errs = append(errs, ifaceName(bp.Child("name"), b.Name, true)...)
		if slices.Contains(mc.Master, b.Name) {
			errs = append(errs, field.Invalid(bp.Child("name"), b.Name, "the bond cannot have the name of one of its members"))
		}
		if b.Mode < 0 || b.Mode > 6 {
			errs = append(errs, field.Invalid(bp.Child("mode"), b.Mode, "bonding mode must be between 0 (balance-rr) and 6 (balance-alb)"))
		} else if b.Options != "" {
			// The same check berth-ifacer makes on the node: a bad option is
			// refused here rather than failing every pod's ADD.
			bond := cniconf.IfacerBond{Name: b.Name, Mode: b.Mode, Options: b.Options}
			if _, err := bond.ParseOptions(mc.Master); err != nil {
				errs = append(errs, field.Invalid(bp.Child("options"), b.Options, err.Error()))
			}
		}
	} else if len(mc.Master) > 1 {
		errs = append(errs, field.Required(p.Child("bond"), "required when more than one master is given: Berth bonds them"))
	}
	if len(errs) == 0 && mc.VLANID != 0 {
		if name := render.Master(mc); len(name) > maxIfaceName {
			errs = append(errs, field.Invalid(p.Child("vlanID"), mc.VLANID,
				fmt.Sprintf("the VLAN sub-interface name %q would be longer than %d characters; use a shorter master or bond name", name, maxIfaceName)))
		}
	}
	return errs
}

func ifaceName(p *field.Path, name string, required bool) field.ErrorList {
	switch {
	case name == "":
		if required {
			return field.ErrorList{field.Required(p, "an interface name")}
		}
		return nil
	case len(name) > maxIfaceName:
		return field.ErrorList{field.TooLong(p, name, maxIfaceName)}
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\r\v\f"):
		return field.ErrorList{field.Invalid(p, name, "not a valid interface name (no '/', ':' or whitespace; not '.' or '..')")}
	}
	return nil
}

func vlan(p *field.Path, id int32) field.ErrorList {
	if id < 0 || id > 4094 {
		return field.ErrorList{field.Invalid(p, id, "VLAN ID must be between 0 (untagged) and 4094")}
	}
	return nil
}

func mtu(p *field.Path, v int32) field.ErrorList {
	if v != 0 && (v < 68 || v > 65535) {
		return field.ErrorList{field.Invalid(p, v, "MTU must be 0 (the parent's) or between 68 and 65535")}
	}
	return nil
}

// oneOf checks an enumerated string; empty passes when the API defaults it.
func oneOf(p *field.Path, v string, allowed []string, emptyOK bool) field.ErrorList {
	if (v == "" && emptyOK) || slices.Contains(allowed, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p, v, allowed)}
}

func sriov(c *berthv1.SRIOVConfig, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	rp := p.Child("resourceName")
	if c.ResourceName == "" {
		errs = append(errs, field.Required(rp, "the device plugin resource whose VFs the pods get, e.g. berth.io/sriov_netdevice"))
	} else {
		for _, msg := range content.IsLabelKey(c.ResourceName) {
			errs = append(errs, field.Invalid(rp, c.ResourceName, "not a resource name: "+msg))
		}
	}
	errs = append(errs, vlan(p.Child("vlanID"), c.VLANID)...)
	if c.VLANQoS < 0 || c.VLANQoS > 7 {
		errs = append(errs, field.Invalid(p.Child("vlanQoS"), c.VLANQoS, "VLAN QoS (802.1p priority) must be between 0 and 7"))
	}
	errs = append(errs, oneOf(p.Child("spoofchk"), c.SpoofChk, onOff, true)...)
	errs = append(errs, oneOf(p.Child("trust"), c.Trust, onOff, true)...)
	errs = append(errs, oneOf(p.Child("linkState"), c.LinkState, linkStates, true)...)
	if c.MinTxRate < 0 {
		errs = append(errs, field.Invalid(p.Child("minTxRate"), c.MinTxRate, "must be 0 (no limit) or a rate in Mbps"))
	}
	if c.MaxTxRate < 0 {
		errs = append(errs, field.Invalid(p.Child("maxTxRate"), c.MaxTxRate, "must be 0 (no limit) or a rate in Mbps"))
	}
	if c.MinTxRate > 0 && c.MaxTxRate > 0 && c.MinTxRate > c.MaxTxRate {
		errs = append(errs, field.Invalid(p.Child("minTxRate"), c.MinTxRate, fmt.Sprintf("must not exceed maxTxRate (%d)", c.MaxTxRate)))
	}
	return errs
}

func ovs(c *berthv1.OVSConfig, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, ifaceName(p.Child("bridge"), c.Bridge, true)...)
	errs = append(errs, vlan(p.Child("vlan"), c.VLAN)...)
	for i, t := range c.Trunk {
		tp := p.Child("trunk").Index(i)
		switch {
		case t.ID != nil && (t.MinID != nil || t.MaxID != nil):
			errs = append(errs, field.Invalid(tp, "", "either id or minID and maxID, not both"))
		case t.ID != nil:
			errs = append(errs, vlan(tp.Child("id"), *t.ID)...)
		case t.MinID == nil || t.MaxID == nil:
			errs = append(errs, field.Required(tp, "id, or both minID and maxID"))
		default:
			errs = append(errs, vlan(tp.Child("minID"), *t.MinID)...)
			errs = append(errs, vlan(tp.Child("maxID"), *t.MaxID)...)
			if *t.MinID > *t.MaxID {
				errs = append(errs, field.Invalid(tp.Child("minID"), *t.MinID, fmt.Sprintf("must not exceed maxID (%d)", *t.MaxID)))
			}
		}
	}
	if c.DeviceID != "" && !pciAddress.MatchString(c.DeviceID) {
		errs = append(errs, field.Invalid(p.Child("deviceID"), c.DeviceID, "must be a PCI address such as 0000:3b:00.2"))
	}
	return errs
}

func hostDevice(c *berthv1.HostDeviceConfig, p *field.Path) field.ErrorList {
	switch {
	case c.Device == "" && c.PCIAddress == "":
		return field.ErrorList{field.Required(p, "one of device and pciAddress")}
	case c.Device != "" && c.PCIAddress != "":
		return field.ErrorList{field.Forbidden(p.Child("pciAddress"), "exactly one of device and pciAddress may be set")}
	case c.PCIAddress != "" && !pciAddress.MatchString(c.PCIAddress):
		return field.ErrorList{field.Invalid(p.Child("pciAddress"), c.PCIAddress, "must be a PCI address such as 0000:3b:00.1")}
	}
	return ifaceName(p.Child("device"), c.Device, false)
}

// custom checks a user's configuration the way the controller will use it:
// rendered with Berth's plugins and parsed by libcni.
func custom(nw *berthv1.Network, p *field.Path) field.ErrorList {
	raw := nw.Spec.Custom.Config
	if strings.TrimSpace(raw) == "" {
		return field.ErrorList{field.Required(p, "a CNI plugin configuration or configuration list, as JSON")}
	}
	if _, err := render.ParseCustom(raw); err != nil {
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, err.Error())}
	}
	// Rendering finds what only the completed list shows (an unsupported
	// cniVersion, a malformed ipam or capabilities); errors about other
	// fields are reported where those fields are checked.
	prefix := fmt.Sprintf("network %s/%s: spec.custom.config: ", nw.Namespace, nw.Name)
	if _, err := render.Config(render.Input{Network: nw}); err != nil && strings.HasPrefix(err.Error(), prefix) {
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, strings.TrimPrefix(err.Error(), prefix))}
	}
	return nil
}

func poolNames(sel *berthv1.PoolSelection, p *field.Path) field.ErrorList {
	if sel == nil {
		return nil
	}
	var errs field.ErrorList
	for _, f := range []struct {
		fam   string
		names []string
	}{{"ipv4", sel.IPv4}, {"ipv6", sel.IPv6}} {
		fam, names := f.fam, f.names
		for i, name := range names {
			fp := p.Child(fam).Index(i)
			for _, msg := range content.IsDNS1123Subdomain(name) {
				errs = append(errs, field.Invalid(fp, name, "not an IPPool name: "+msg))
			}
			if slices.Index(names, name) < i {
				errs = append(errs, field.Duplicate(fp, name))
			}
		}
	}
	return errs
}

// Settings checks coordinator settings, of a Network or of the Coordinator,
// with berth-coordinator's own checks (cniconf): a setting the plugin would
// refuse at every pod's ADD is refused here instead.
func Settings(s *berthv1.CoordinatorSettings, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	invalid := func(name string, err error) {
		if err != nil {
			// The plugin's message starts with the value.
			errs = append(errs, field.Invalid(p.Child(name), field.OmitValueType{}, err.Error()))
		}
	}
	if s.Mode != nil {
		errs = append(errs, oneOf(p.Child("mode"), string(*s.Mode), coordModes, false)...)
	}
	for i, c := range s.HijackCIDRs {
		if _, err := cniconf.ParseCIDR(c); err != nil {
			errs = append(errs, field.Invalid(p.Child("hijackCIDR").Index(i), c, "must be a CIDR such as 10.96.0.0/12"))
		}
	}
	if v := s.PodDefaultRouteNIC; v != nil {
		if len(*v) > maxIfaceName {
			errs = append(errs, field.TooLong(p.Child("podDefaultRouteNIC"), *v, maxIfaceName))
		} else {
			invalid("podDefaultRouteNIC", cniconf.CheckPodDefaultRouteNIC(*v))
		}
	}
	if v := s.PodMACPrefix; v != nil {
		_, err := cniconf.ParseMACPrefix(*v)
		invalid("podMACPrefix", err)
	}
	if v := s.HostRuleTable; v != nil {
		invalid("hostRuleTable", cniconf.CheckHostRuleTable(*v))
	}
	if v := s.PodRPFilter; v != nil {
		invalid("podRPFilter", cniconf.CheckRPFilter(*v))
	}
	if v := s.HostRPFilter; v != nil {
		invalid("hostRPFilter", cniconf.CheckRPFilter(*v))
	}
	if v := s.TxQueueLen; v != nil {
		invalid("txQueueLen", cniconf.CheckTxQueueLen(*v))
	}
	if v := s.VethLinkAddress; v != nil {
		_, err := cniconf.ParseVethLinkAddress(*v)
		invalid("vethLinkAddress", err)
	}
	return errs
}
