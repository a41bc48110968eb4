package coordinator

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/cnierr"
)

// teardown is DEL: it needs no state but the container ID, the interface
// name and, when the runtime passes it, prevResult.
func teardown(c *call) error {
	var errs []error
	errs = append(errs, teardownHost(c))
	podNS, err := ns.GetNS(c.args.Netns)
	if err != nil {
		// The netns is gone: so is everything ADD made in it.
		return errors.Join(errs...)
	}
	defer podNS.Close()
	errs = append(errs, podNS.Do(func(ns.NetNS) error {
		var errs []error
		link, err := linkByName(c.args.IfName)
		if err != nil {
			return err
		}
		if link != nil {
			table := nicTable(link)
			rules, err := rulesOf(table)
			if err != nil {
				return err
			}
			for i := range rules {
				if rules[i].Table == table && rules[i].Priority == PodRulePriority {
					errs = append(errs, delRule(&rules[i]))
				}
			}
			errs = append(errs, flushTable(table))
		}
		if c.args.IfName == DefaultNIC {
			veth, err := linkByName(PodVethName)
			if err != nil {
				return err
			}
			if veth != nil {
				if err := netlink.LinkDel(veth); err != nil && !notFound(err) {
					errs = append(errs, fmt.Errorf("deleting %s: %w", PodVethName, err))
				}
			}
		}
		return errors.Join(errs...)
	}))
	return errors.Join(errs...)
}

// teardownHost deletes the host veth and the rules to the pod's addresses.
// A rule goes only when no route to its address is left in the table: the
// address may already serve a new pod.
func teardownHost(c *call) error {
	table := c.cfg.HostRuleTable
	var addrs []netip.Addr
	if c.prev != nil {
		if n, err := nicOf(c.prev, c.args.IfName); err == nil {
			for _, a := range n.addrs {
				addrs = append(addrs, a.Addr())
			}
		}
	}
	name := hostVethName(c.args.ContainerID, c.args.IfName)
	link, err := linkByName(name)
	if err != nil {
		return err
	}
	if link != nil {
		for _, v4 := range []bool{true, false} {
			routes, err := tableRoutes(family(v4), table)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if p, ok := prefixOf(r.Dst); ok && r.LinkIndex == link.Attrs().Index && p.IsSingleIP() && !containsAddr(addrs, p.Addr()) {
					addrs = append(addrs, p.Addr())
				}
			}
		}
		if err := netlink.LinkDel(link); err != nil && !notFound(err) {
			return fmt.Errorf("deleting host veth %s: %w", name, err)
		}
	}
	var errs []error
	for _, a := range addrs {
		inUse, err := routedIn(table, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !inUse {
			errs = append(errs, delRule(rule(netip.Prefix{}, hostPrefix(a), table, HostRulePriority)))
		}
	}
	return errors.Join(errs...)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// routedIn reports whether table has a route to exactly a.
func routedIn(table int, a netip.Addr) (bool, error) {
	routes, err := tableRoutes(family(a.Is4()), table)
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if p, ok := prefixOf(r.Dst); ok && p == hostPrefix(a) && r.Table == table {
			return true, nil
		}
	}
	return false, nil
}

// check is CHECK: what ADD made is still in place.
func check(c *call, n *nic, isDefault bool) error {
	podNS, err := ns.GetNS(c.args.Netns)
	if err != nil {
		return cnierr.Errorf(types.ErrInvalidNetNS, "opening netns %s: %w", c.args.Netns, err)
	}
	defer podNS.Close()
	if c.mode() == cniconf.ModeUnderlay && n.name == DefaultNIC {
		name := hostVethName(c.args.ContainerID, n.name)
		link, err := linkByName(name)
		if err != nil {
			return err
		}
		if link == nil {
			return fmt.Errorf("host veth %s is missing", name)
		}
		for _, a := range n.addrs {
			ok, err := routedIn(c.cfg.HostRuleTable, a.Addr())
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("host table %d has no route to %s", c.cfg.HostRuleTable, a.Addr())
			}
			if ok, err := hasRule(netip.Prefix{}, hostPrefix(a.Addr()), c.cfg.HostRuleTable); err != nil || !ok {
				return errors.Join(err, fmt.Errorf("host has no rule to %s lookup %d", a.Addr(), c.cfg.HostRuleTable))
			}
		}
	}
	return podNS.Do(func(ns.NetNS) error {
		link, err := linkByName(n.name)
		if err != nil {
			return err
		}
		if link == nil {
			return fmt.Errorf("interface %s is not in the pod", n.name)
		}
		if c.mode() == cniconf.ModeUnderlay && n.name == DefaultNIC {
			if veth, err := linkByName(PodVethName); err != nil || veth == nil {
				return errors.Join(err, fmt.Errorf("%s is missing from the pod", PodVethName))
			}
		}
		for v4, gw := range n.gateways {
			if _, ok := n.addr(v4); !ok {
				continue
			}
			table := unix.RT_TABLE_MAIN
			if !isDefault {
				table = nicTable(link)
			}
			want := netlink.Route{LinkIndex: link.Attrs().Index, Dst: defaultDst(v4), Gw: gw.AsSlice(), Table: table}
			ok, err := routeExists(want)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("missing default route %s", describe(want))
			}
		}
		if !isDefault {
			for _, a := range n.addrs {
				if ok, err := hasRule(hostPrefix(a.Addr()), netip.Prefix{}, nicTable(link)); err != nil || !ok {
					return errors.Join(err, fmt.Errorf("missing rule from %s lookup %d", a.Addr(), nicTable(link)))
				}
			}
		}
		return nil
	})
}

func hasRule(src, dst netip.Prefix, table int) (bool, error) {
	rules, err := rulesOf(table)
	if err != nil {
		return false, err
	}
	for _, r := range rules {
		if r.Table != table {
			continue
		}
		gotSrc, _ := prefixOf(r.Src)
		gotDst, _ := prefixOf(r.Dst)
		if gotSrc == src && gotDst == dst {
			return true, nil
		}
	}
	return false, nil
}
