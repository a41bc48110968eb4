package coordinator

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nicTable is the policy-routing table of a pod interface.
func nicTable(link netlink.Link) int { return NICTableBase + link.Attrs().Index }

// policyRouting makes replies leave by the interface their request came in
// on and puts the default route on the interface that carries it. An
// interface without the default route gets a table of its own with its
// routes and a default via its gateway, chosen by "from <its address>"
// rules; the interface with it takes over the main table's default, and
// moves the defaults of other interfaces into their own tables.
func (s *setup) policyRouting() error {
	return s.podNS.Do(func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(s.nic.name)
		if err != nil {
			return fmt.Errorf("finding interface %s in the pod: %w", s.nic.name, err)
		}
		if !s.isDefault {
			return s.ownTable(link)
		}
		for _, v4 := range s.families() {
			gw, ok := s.nic.gateways[v4]
			if !ok {
				continue
			}
			if err := s.takeDefault(link, v4, gw); err != nil {
				return err
			}
		}
		return nil
	})
}

// ownTable gives link its table and rules and takes its defaults out of
// the main table.
func (s *setup) ownTable(link netlink.Link) error {
	table := nicTable(link)
	links := []int{link.Attrs().Index}
	if veth, err := linkByName(PodVethName); err == nil && veth != nil && s.nic.name == DefaultNIC {
		// The cluster routes through the host veth serve replies from
		// eth0's address too.
		links = append(links, veth.Attrs().Index)
	}
	s.undo.push(func() error { return s.podNS.Do(func(ns.NetNS) error { return flushTable(table) }) })
	for _, v4 := range s.families() {
		if err := copyRoutes(links, v4, table); err != nil {
			return err
		}
		if gw, ok := s.nic.gateways[v4]; ok {
			r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: defaultDst(v4), Gw: gw.AsSlice(), Table: table}
			if _, err := addRoute(r); err != nil {
				return err
			}
		}
		if err := s.removeMainDefaults(link.Attrs().Index, v4); err != nil {
			return err
		}
		a, _ := s.nic.addr(v4)
		if err := s.addFromRule(hostPrefix(a.Addr()), table); err != nil {
			return err
		}
	}
	return nil
}

func (s *setup) addFromRule(src netip.Prefix, table int) error {
	ru := rule(src, netip.Prefix{}, table, PodRulePriority)
	added, err := addRule(ru)
	if err != nil {
		return err
	}
	if added {
		s.undo.push(func() error { return s.podNS.Do(func(ns.NetNS) error { return delRule(ru) }) })
	}
	return nil
}

// copyRoutes copies the main-table routes of links into table.
func copyRoutes(links []int, v4 bool, table int) error {
	routes, err := tableRoutes(family(v4), unix.RT_TABLE_MAIN)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if len(r.MultiPath) > 0 || !containsInt(links, r.LinkIndex) || !copyable(r) {
			continue
		}
		c := netlink.Route{LinkIndex: r.LinkIndex, Dst: r.Dst, Gw: r.Gw, Src: r.Src, Scope: r.Scope, Table: table, Priority: r.Priority}
		if _, err := addRoute(c); err != nil {
			return err
		}
	}
	return nil
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// removeMainDefaults deletes the main table's default routes through
// linkIndex, keeping the other next hops of a multipath default.
func (s *setup) removeMainDefaults(linkIndex int, v4 bool) error {
	return s.rewriteMainDefaults(v4, func(nh nexthop) bool { return nh.linkIndex == linkIndex }, nil)
}

// takeDefault moves the main table's defaults through other links into
// their links' tables, then routes the main default via gw on link.
func (s *setup) takeDefault(link netlink.Link, v4 bool, gw netip.Addr) error {
	moved := func(nh nexthop) error {
		other, err := netlink.LinkByIndex(nh.linkIndex)
		if err != nil {
			return fmt.Errorf("finding link %d of a default route: %w", nh.linkIndex, err)
		}
		table := nicTable(other)
		s.undo.push(func() error { return s.podNS.Do(func(ns.NetNS) error { return flushTable(table) }) })
		if err := copyRoutes([]int{nh.linkIndex}, v4, table); err != nil {
			return err
		}
		r := netlink.Route{LinkIndex: nh.linkIndex, Dst: defaultDst(v4), Gw: nh.gw, Table: table}
		if _, err := addRoute(r); err != nil {
			return err
		}
		addrs, err := globalAddrs(other, v4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if err := s.addFromRule(hostPrefix(a), table); err != nil {
				return err
			}
		}
		return nil
	}
	err := s.rewriteMainDefaults(v4, func(nh nexthop) bool { return nh.linkIndex != link.Attrs().Index }, moved)
	if err != nil {
		return err
	}
	r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: defaultDst(v4), Gw: gw.AsSlice()}
	added, err := addRoute(r)
	if err != nil {
		return err
	}
	if added {
		s.undo.push(func() error { return s.podNS.Do(func(ns.NetNS) error { return delRoute(r) }) })
	}
	return nil
}

// rewriteMainDefaults drops from the main table's default routes the next
// hops drop selects (calling moved on each first, when not nil) and puts
// the rest back. Undo restores the routes as they were.
func (s *setup) rewriteMainDefaults(v4 bool, drop func(nexthop) bool, moved func(nexthop) error) error {
	routes, err := tableRoutes(family(v4), unix.RT_TABLE_MAIN)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if !isDefault(r.Dst) || r.Type != unix.RTN_UNICAST {
			continue
		}
		var keep, gone []nexthop
		for _, nh := range nexthops(r) {
			if drop(nh) {
				gone = append(gone, nh)
			} else {
				keep = append(keep, nh)
			}
		}
		if len(gone) == 0 {
			continue
		}
		for _, nh := range gone {
			if moved != nil {
				if err := moved(nh); err != nil {
					return err
				}
			}
		}
		orig := r
		if err := netlink.RouteDel(&orig); err != nil && !notFound(err) {
			return fmt.Errorf("deleting default route %s: %w", describe(orig), err)
		}
		var rest []netlink.Route
		for _, nh := range keep {
			rest = append(rest, netlink.Route{LinkIndex: nh.linkIndex, Dst: defaultDst(v4), Gw: nh.gw, Priority: r.Priority})
		}
		s.undo.push(func() error {
			return s.podNS.Do(func(ns.NetNS) error {
				var errs []error
				for _, k := range rest {
					errs = append(errs, delRoute(k))
				}
				o := orig
				if err := netlink.RouteReplace(&o); err != nil {
					errs = append(errs, fmt.Errorf("restoring default route %s: %w", describe(o), err))
				}
				return errors.Join(errs...)
			})
		})
		for _, k := range rest {
			if err := netlink.RouteAppend(&k); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("restoring default route %s: %w", describe(k), err)
			}
		}
	}
	return nil
}
