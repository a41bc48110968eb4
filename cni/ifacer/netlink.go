package ifacer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/berth-io/berth/api/cniconf"
)

// netlinkHost is host on the network namespace of the calling thread: the
// node's, since berth-ifacer works where the runtime starts it and never
// enters the pod's.
type netlinkHost struct{}

var _ host = netlinkHost{}

func (netlinkHost) observe(withAddrs []string) (state, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return state{}, fmt.Errorf("listing links: %w", err)
	}
	var st state
	for _, nl := range links {
		a := nl.Attrs()
		l := link{name: a.Name, index: a.Index, kind: nl.Type(), up: a.Flags&net.FlagUp != 0, master: a.MasterIndex, mtu: a.MTU}
		switch v := nl.(type) {
		case *netlink.Bond:
			l.bondMode = int32(v.Mode)
		case *netlink.Vlan:
			l.parent, l.vlanID, l.vlanProto = a.ParentIndex, int32(v.VlanId), int(v.VlanProtocol)
		}
		if slices.Contains(withAddrs, a.Name) {
			if l.addrs, err = globalAddrs(nl); err != nil {
				return state{}, err
			}
		}
		st.links = append(st.links, l)
	}
	return st, nil
}

// globalAddrs are the link's addresses other than link-local ones: those
// the node may be reached at.
func globalAddrs(l netlink.Link) ([]netip.Prefix, error) {
	addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing the addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func (netlinkHost) createBond(name string, mode int32, opts []cniconf.BondOption, mtu int) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = name, mtu
	b := netlink.NewLinkBond(attrs)
	b.Mode = netlink.BondMode(mode)
	if err := setBondOptions(b, opts, func(name string) (int, error) {
		l, err := netlinksafe.LinkByName(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	}); err != nil {
		return err
	}
	return netlink.LinkAdd(b)
}

// setBondOptions puts parsed options into b, the way netlink carries them
// to the kernel at creation; ifindex resolves primary, which netlink names
// by index.
func setBondOptions(b *netlink.Bond, opts []cniconf.BondOption, ifindex func(string) (int, error)) error {
	for _, o := range opts {
		switch o.Name {
		case cniconf.BondOptMiimon:
			b.Miimon = o.Int
		case cniconf.BondOptUpDelay:
			b.UpDelay = o.Int
		case cniconf.BondOptDownDelay:
			b.DownDelay = o.Int
		case cniconf.BondOptUseCarrier:
			b.UseCarrier = o.Int
		case cniconf.BondOptARPInterval:
			b.ArpInterval = o.Int
		case cniconf.BondOptARPIPTarget:
			for _, ip := range o.IPs {
				b.ArpIpTargets = append(b.ArpIpTargets, net.IP(ip.AsSlice()))
			}
		case cniconf.BondOptARPValidate:
			b.ArpValidate = netlink.BondArpValidate(o.Int)
		case cniconf.BondOptARPAllTargets:
			b.ArpAllTargets = netlink.BondArpAllTargets(o.Int)
		case cniconf.BondOptPrimary:
			idx, err := ifindex(o.Interface)
			if err != nil {
				return fmt.Errorf("primary %s: %w", o.Interface, err)
			}
			b.Primary = idx
		case cniconf.BondOptPrimaryReselect:
			b.PrimaryReselect = netlink.BondPrimaryReselect(o.Int)
		case cniconf.BondOptFailOverMAC:
			b.FailOverMac = netlink.BondFailOverMac(o.Int)
		case cniconf.BondOptXmitHashPolicy:
			b.XmitHashPolicy = netlink.BondXmitHashPolicy(o.Int)
		case cniconf.BondOptResendIGMP:
			b.ResendIgmp = o.Int
		case cniconf.BondOptNumPeerNotif:
			b.NumPeerNotif = o.Int
		case cniconf.BondOptAllSlavesActive:
			b.AllSlavesActive = o.Int
		case cniconf.BondOptMinLinks:
			b.MinLinks = o.Int
		case cniconf.BondOptLPInterval:
			b.LpInterval = o.Int
		case cniconf.BondOptPacketsPerSlave:
			b.PacketsPerSlave = o.Int
		case cniconf.BondOptLACPRate:
			b.LacpRate = netlink.BondLacpRate(o.Int)
		case cniconf.BondOptADSelect:
			b.AdSelect = netlink.BondAdSelect(o.Int)
		case cniconf.BondOptADActorSysPrio:
			b.AdActorSysPrio = o.Int
		case cniconf.BondOptADUserPortKey:
			b.AdUserPortKey = o.Int
		case cniconf.BondOptADActorSystem:
			b.AdActorSystem = o.MAC
		case cniconf.BondOptTLBDynamicLB:
			b.TlbDynamicLb = o.Int
		default:
			// cniconf and this switch are kept in step by a test; an option
			// silently dropped would leave a bond unlike its Network.
			return fmt.Errorf("bonding option %s has no netlink attribute here", o.Name)
		}
	}
	return nil
}

func (netlinkHost) createVLAN(name, parent string, id int32) error {
	p, err := netlinksafe.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("finding parent %s: %w", parent, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex = name, p.Attrs().Index
	return netlink.LinkAdd(&netlink.Vlan{LinkAttrs: attrs, VlanId: int(id), VlanProtocol: netlink.VLAN_PROTOCOL_8021Q})
}

func (netlinkHost) setUp(name string, up bool) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return err
	}
	if up {
		return netlink.LinkSetUp(l)
	}
	return netlink.LinkSetDown(l)
}

func (netlinkHost) setMaster(name, master string) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return err
	}
	if master == "" {
		if l.Attrs().MasterIndex == 0 {
			return nil
		}
		return netlink.LinkSetNoMaster(l)
	}
	m, err := netlinksafe.LinkByName(master)
	if err != nil {
		return fmt.Errorf("finding %s: %w", master, err)
	}
	return netlink.LinkSetMasterByIndex(l, m.Attrs().Index)
}

func (netlinkHost) remove(name string) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(l)
}
