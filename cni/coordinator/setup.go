package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/cni/probe"
)

// setup is one ADD's work on the pod and the host.
type setup struct {
	c             *call
	nic           *nic
	podNS, hostNS ns.NetNS
	undo          *undo
	isDefault     bool
	mode          string
	newMAC        net.HardwareAddr
}

// families are the IP families the interface has addresses of, IPv4 first.
func (s *setup) families() []bool {
	var out []bool
	for _, v4 := range []bool{true, false} {
		if _, ok := s.nic.addr(v4); ok {
			out = append(out, v4)
		}
	}
	return out
}

// prepareNIC sets the interface's MAC, queue length and rp_filter, then
// checks the segment: nothing is routed before the address is known to be
// ours and the gateway to answer.
func (s *setup) prepareNIC(ctx context.Context) error {
	cfg := s.c.cfg
	return s.podNS.Do(func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(s.nic.name)
		if err != nil {
			return fmt.Errorf("finding interface %s in the pod: %w", s.nic.name, err)
		}
		assignedMAC := s.c.cniArgs.Assignment != nil && s.c.cniArgs.Assignment.MAC != ""
		if len(cfg.PodMACPrefix) > 0 && !assignedMAC {
			if err := s.setMAC(link); err != nil {
				return err
			}
		}
		if cfg.TxQueueLen > 0 && link.Attrs().TxQLen != cfg.TxQueueLen {
			old := link.Attrs().TxQLen
			if err := netlink.LinkSetTxQLen(link, cfg.TxQueueLen); err != nil {
				return fmt.Errorf("setting the txqueuelen of %s to %d: %w", s.nic.name, cfg.TxQueueLen, err)
			}
			s.undo.push(func() error {
				return s.podNS.Do(func(ns.NetNS) error { return netlink.LinkSetTxQLen(link, old) })
			})
		}
		if _, ok := s.nic.addr(true); ok && cfg.PodRPFilter >= 0 {
			for _, dev := range []string{"all", s.nic.name} {
				if err := setSysctl(fmt.Sprintf("net/ipv4/conf/%s/rp_filter", dev), cfg.PodRPFilter); err != nil {
					return err
				}
			}
		}
		if cfg.DetectIPConflict {
			for _, a := range s.nic.addrs {
				if err := probe.Conflict(ctx, s.nic.name, a.Addr(), cfg.DetectIPConflictTimeout); err != nil {
					var ce *probe.ConflictError
					if errors.As(err, &ce) {
						return cnierr.Errorf(cnierr.AddressConflict, "%w", err)
					}
					return fmt.Errorf("checking that %s is free: %w", a.Addr(), err)
				}
			}
		}
		if cfg.DetectGateway {
			for _, v4 := range s.families() {
				gw, ok := s.nic.gateways[v4]
				if !ok {
					continue
				}
				if err := probe.Gateway(ctx, s.nic.name, gw, cfg.DetectGatewayTimeout); err != nil {
					if errors.Is(err, probe.ErrGatewayUnreachable) {
						return cnierr.Errorf(cnierr.GatewayUnreachable, "%w", err)
					}
					return fmt.Errorf("checking gateway %s: %w", gw, err)
				}
			}
		}
		if a, ok := s.nic.addr(true); ok {
			if err := probe.Announce(s.nic.name, a.Addr()); err != nil {
				warn(fmt.Sprintf("announcing %s: %v", a.Addr(), err))
			}
		}
		return nil
	})
}

func (s *setup) setMAC(link netlink.Link) error {
	a := s.nic.addrs[0]
	if v4, ok := s.nic.addr(true); ok {
		a = v4
	}
	mac := macFromPrefix(s.c.cfg.PodMACPrefix, a.Addr())
	old := link.Attrs().HardwareAddr
	if slices.Equal(old, mac) {
		s.newMAC = mac
		return nil
	}
	if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("setting the MAC of %s to %s: %w", s.nic.name, mac, err)
	}
	s.newMAC = mac
	s.undo.push(func() error {
		return s.podNS.Do(func(ns.NetNS) error { return netlink.LinkSetHardwareAddr(link, old) })
	})
	return nil
}

// macFromPrefix is the prefix followed by the last bytes of addr, padded
// with zeros: 0a:1b + 10.6.212.101 -> 0a:1b:0a:06:d4:65.
func macFromPrefix(prefix []byte, addr netip.Addr) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	copy(mac, prefix)
	b := addr.AsSlice()
	n := 6 - len(prefix)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	copy(mac[6-len(b):], b)
	return mac
}

func setSysctl(key string, v int) error {
	if _, err := sysctl.Sysctl(key, fmt.Sprint(v)); err != nil {
		return fmt.Errorf("setting sysctl %s=%d: %w", key, v, err)
	}
	return nil
}

// clusterCIDRs are the destinations that must reach the node's stack: the
// pod, service and hijack CIDRs of a family.
func (s *setup) clusterCIDRs(v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, list := range [][]netip.Prefix{s.c.cfg.PodCIDRs, s.c.cfg.ServiceCIDRs, s.c.cfg.HijackCIDRs} {
		for _, p := range list {
			if p.Addr().Is4() == v4 && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// hostAddrs lists the node's global addresses of a family, in the calling
// thread's netns (the host), except those already inside the cluster
// CIDRs and those of other pods' veths.
func (s *setup) hostAddrs(v4 bool) ([]netip.Prefix, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing the host's links: %w", err)
	}
	cidrs := s.c.cfg.PodCIDRs
	cidrs = append(slices.Clone(cidrs), s.c.cfg.ServiceCIDRs...)
	cidrs = append(cidrs, s.c.cfg.HijackCIDRs...)
	var out []netip.Prefix
	for _, l := range links {
		if len(l.Attrs().Name) >= len(HostVethPrefix) && l.Attrs().Name[:len(HostVethPrefix)] == HostVethPrefix {
			continue
		}
		addrs, err := globalAddrs(l, v4)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			covered := slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(a) })
			if !covered && !slices.Contains(out, hostPrefix(a)) {
				out = append(out, hostPrefix(a))
			}
		}
	}
	return out, nil
}

// underlayVeth joins the pod to its node: veth0 in the pod, bth<hash> on
// the host; the pod routes the cluster CIDRs and the node's addresses
// through it, the host routes the pod's addresses back from hostRuleTable.
func (s *setup) underlayVeth() error {
	cfg := s.c.cfg
	hostAddrs := map[bool][]netip.Prefix{}
	for _, v4 := range s.families() {
		a, err := s.hostAddrs(v4)
		if err != nil {
			return err
		}
		hostAddrs[v4] = a
	}
	hostName := hostVethName(s.c.args.ContainerID, s.nic.name)
	var hostLink netlink.Link
	err := s.podNS.Do(func(ns.NetNS) error {
		existing, err := linkByName(PodVethName)
		if err != nil {
			return err
		}
		if existing != nil {
			// ADD again for the same container: keep the pair if it is ours.
			peer, err := s.hostLink(hostName)
			if err != nil {
				return err
			}
			if peer == nil || existing.Attrs().ParentIndex != peer.Attrs().Index {
				return fmt.Errorf("the pod already has a %s that is not the peer of %s", PodVethName, hostName)
			}
			hostLink = peer
			return nil
		}
		mtu := 0
		if l, err := netlinksafe.LinkByName(s.nic.name); err == nil {
			mtu = l.Attrs().MTU
		}
		if _, _, err := ip.SetupVethWithName(PodVethName, hostName, mtu, "", s.hostNS); err != nil {
			return fmt.Errorf("creating veth pair %s/%s: %w", PodVethName, hostName, err)
		}
		s.undo.push(func() error { return deleteLinkIn(s.hostNS, hostName) })
		hostLink, err = s.hostLink(hostName)
		if err != nil {
			return err
		}
		if hostLink == nil {
			return fmt.Errorf("host side %s of the veth pair vanished", hostName)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.hostNS.Do(func(ns.NetNS) error {
		return netlink.LinkSetAlias(hostLink, vethAlias(s.c.conf.Name, s.c.args.ContainerID, s.nic.name))
	}); err != nil {
		return fmt.Errorf("labelling host veth %s: %w", hostName, err)
	}
	if err := s.hostSide(hostLink); err != nil {
		return err
	}
	return s.podNS.Do(func(ns.NetNS) error {
		veth, err := netlinksafe.LinkByName(PodVethName)
		if err != nil {
			return fmt.Errorf("finding %s in the pod: %w", PodVethName, err)
		}
		if _, ok := s.nic.addr(false); ok {
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", PodVethName), 0); err != nil {
				return err
			}
			if err := addrReplace(veth, netip.PrefixFrom(podVethIPv6, 64), true); err != nil {
				return err
			}
		}
		if _, ok := s.nic.addr(true); ok {
			// An IPv4 address of its own on veth0, the address after the
			// host side's: what arrives from the node through veth0 is
			// redirected to it by a sidecar's iptables REDIRECT, which
			// drops packets that come in on an interface without one.
			if err := addrReplace(veth, hostPrefix(cfg.VethLinkAddress.Next()), false); err != nil {
				return err
			}
			if cfg.PodRPFilter >= 0 {
				if err := setSysctl(fmt.Sprintf("net/ipv4/conf/%s/rp_filter", PodVethName), cfg.PodRPFilter); err != nil {
					return err
				}
			}
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return fmt.Errorf("setting %s up: %w", PodVethName, err)
		}
		for _, v4 := range s.families() {
			src, _ := s.nic.addr(v4)
			nh := hostVethIPv6
			if v4 {
				nh = cfg.VethLinkAddress
				r := netlink.Route{LinkIndex: veth.Attrs().Index, Dst: ipNet(hostPrefix(nh)), Scope: netlink.SCOPE_LINK, Src: src.Addr().AsSlice()}
				if _, err := addRoute(r); err != nil {
					return err
				}
			}
			dsts := append(s.clusterCIDRs(v4), hostAddrs[v4]...)
			for _, dst := range dsts {
				r := netlink.Route{LinkIndex: veth.Attrs().Index, Dst: ipNet(dst), Gw: nh.AsSlice(), Src: src.Addr().AsSlice()}
				if _, err := addRoute(r); err != nil {
					return err
				}
			}
		}
		// The routes go with veth0, which undo deletes with its peer.
		return nil
	})
}

func (s *setup) hostLink(name string) (netlink.Link, error) {
	var l netlink.Link
	err := s.hostNS.Do(func(ns.NetNS) error {
		var err error
		l, err = linkByName(name)
		return err
	})
	return l, err
}

func deleteLinkIn(netNS ns.NetNS, name string) error {
	return netNS.Do(func(ns.NetNS) error {
		l, err := linkByName(name)
		if err != nil || l == nil {
			return err
		}
		if err := netlink.LinkDel(l); err != nil && !notFound(err) {
			return fmt.Errorf("deleting link %s: %w", name, err)
		}
		return nil
	})
}

func addrReplace(link netlink.Link, p netip.Prefix, nodad bool) error {
	a := &netlink.Addr{IPNet: ipNet(p)}
	if nodad {
		a.Flags = unix.IFA_F_NODAD
	}
	if p.Addr().Is4() && p.Bits() == 32 {
		a.Scope = int(netlink.SCOPE_LINK)
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// hostSide configures the host end of the veth: its link-local next-hop
// addresses, rp_filter, and a route and rule per pod address.
func (s *setup) hostSide(hostLink netlink.Link) error {
	cfg := s.c.cfg
	return s.hostNS.Do(func(ns.NetNS) error {
		name := hostLink.Attrs().Name
		if _, ok := s.nic.addr(false); ok {
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", name), 0); err != nil {
				return err
			}
			if err := addrReplace(hostLink, netip.PrefixFrom(hostVethIPv6, 64), true); err != nil {
				return err
			}
		}
		if _, ok := s.nic.addr(true); ok {
			if err := addrReplace(hostLink, hostPrefix(cfg.VethLinkAddress), false); err != nil {
				return err
			}
			if cfg.HostRPFilter >= 0 {
				if err := setSysctl(fmt.Sprintf("net/ipv4/conf/%s/rp_filter", name), cfg.HostRPFilter); err != nil {
					return err
				}
			}
		}
		if err := netlink.LinkSetUp(hostLink); err != nil {
			return fmt.Errorf("setting %s up: %w", name, err)
		}
		for _, a := range s.nic.addrs {
			dst := hostPrefix(a.Addr())
			r := netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: ipNet(dst), Table: cfg.HostRuleTable, Scope: netlink.SCOPE_LINK}
			if !a.Addr().Is4() {
				r.Gw, r.Scope = podVethIPv6.AsSlice(), netlink.SCOPE_UNIVERSE
			}
			if _, err := addRoute(r); err != nil {
				return err
			}
			// The route goes with the veth; the rule must be removed.
			ru := rule(netip.Prefix{}, dst, cfg.HostRuleTable, HostRulePriority)
			added, err := addRule(ru)
			if err != nil {
				return err
			}
			if added {
				s.undo.push(func() error { return s.hostNS.Do(func(ns.NetNS) error { return delRule(ru) }) })
			}
		}
		return nil
	})
}

// overlayRoutes sends the cluster CIDRs and the node's addresses via eth0,
// through eth0's own gateway.
func (s *setup) overlayRoutes() error {
	hostAddrs := map[bool][]netip.Prefix{}
	for _, v4 := range []bool{true, false} {
		a, err := s.hostAddrs(v4)
		if err != nil {
			return err
		}
		hostAddrs[v4] = a
	}
	return s.podNS.Do(func(ns.NetNS) error {
		eth0, err := linkByName(DefaultNIC)
		if err != nil {
			return err
		}
		if eth0 == nil {
			return fmt.Errorf("overlay mode: the pod has no %s from the cluster network to route cluster traffic through", DefaultNIC)
		}
		for _, v4 := range []bool{true, false} {
			own, err := globalAddrs(eth0, v4)
			if err != nil {
				return err
			}
			if len(own) == 0 {
				continue
			}
			gw, err := linkGateway(eth0, v4)
			if err != nil {
				return err
			}
			for _, dst := range append(s.clusterCIDRs(v4), hostAddrs[v4]...) {
				if gw.IsValid() && dst == hostPrefix(gw) {
					continue
				}
				r := netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(dst)}
				if gw.IsValid() {
					r.Gw = gw.AsSlice()
				} else {
					r.Scope = netlink.SCOPE_LINK
				}
				added, err := addRoute(r)
				if err != nil {
					return err
				}
				if added {
					s.undo.push(func() error { return s.podNS.Do(func(ns.NetNS) error { return delRoute(r) }) })
				}
			}
		}
		return nil
	})
}

// linkGateway finds the gateway of a link: its default route's, else any
// route's through it, in the main table first. Invalid if it has none.
func linkGateway(link netlink.Link, v4 bool) (netip.Addr, error) {
	var fallback netip.Addr
	for _, table := range []int{unix.RT_TABLE_MAIN, unix.RT_TABLE_UNSPEC} {
		routes, err := tableRoutes(family(v4), table)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, r := range routes {
			for _, nh := range nexthops(r) {
				if nh.linkIndex != link.Attrs().Index || nh.gw == nil {
					continue
				}
				gw, _ := netip.AddrFromSlice(nh.gw)
				if isDefault(r.Dst) {
					return gw.Unmap(), nil
				}
				if !fallback.IsValid() {
					fallback = gw.Unmap()
				}
			}
		}
	}
	return fallback, nil
}
