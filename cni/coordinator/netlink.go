package coordinator

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func family(v4 bool) int {
	if v4 {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func defaultDst(v4 bool) *net.IPNet {
	if v4 {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}

// nexthop is one way out of a route: multipath routes have several.
type nexthop struct {
	linkIndex int
	gw        net.IP
}

func nexthops(r netlink.Route) []nexthop {
	if len(r.MultiPath) == 0 {
		return []nexthop{{r.LinkIndex, r.Gw}}
	}
	out := make([]nexthop, 0, len(r.MultiPath))
	for _, nh := range r.MultiPath {
		out = append(out, nexthop{nh.LinkIndex, nh.Gw})
	}
	return out
}

// tableRoutes lists the routes of table (unix.RT_TABLE_UNSPEC: all tables).
func tableRoutes(fam, table int) ([]netlink.Route, error) {
	routes, err := netlinksafe.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing the routes of table %d: %w", table, err)
	}
	return routes, nil
}

// copyable says whether a main-table route of an interface belongs in its
// own table too: not the default (handled apart), not the per-link IPv6
// link-local and multicast routes the kernel makes by itself.
func copyable(r netlink.Route) bool {
	if isDefault(r.Dst) || r.Type != unix.RTN_UNICAST {
		return false
	}
	if r.Dst.IP.To4() == nil && (r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast()) {
		return false
	}
	return true
}

// sameRoute compares what identifies and directs a route.
func sameRoute(a, b netlink.Route) bool {
	return a.Table == b.Table && a.LinkIndex == b.LinkIndex && a.Gw.Equal(b.Gw) &&
		a.Dst.String() == b.Dst.String() && a.Priority == b.Priority
}

// normalize fills what the kernel reports for a route we only half
// describe, so sameRoute can compare.
func normalize(r netlink.Route) netlink.Route {
	if r.Table == 0 {
		r.Table = unix.RT_TABLE_MAIN
	}
	if r.Dst == nil {
		v4 := r.Gw == nil || r.Gw.To4() != nil
		if r.Src != nil {
			v4 = r.Src.To4() != nil
		}
		r.Dst = defaultDst(v4)
	}
	// The kernel gives IPv6 routes metric 1024 when none is asked for.
	if r.Priority == 0 && r.Dst.IP.To4() == nil {
		r.Priority = 1024
	}
	return r
}

// routeExists reports whether table already has r.
func routeExists(r netlink.Route) (bool, error) {
	r = normalize(r)
	fam := netlink.FAMILY_V4
	if r.Dst.IP.To4() == nil {
		fam = netlink.FAMILY_V6
	}
	routes, err := tableRoutes(fam, r.Table)
	if err != nil {
		return false, err
	}
	for _, got := range routes {
		if sameRoute(normalize(got), r) {
			return true, nil
		}
	}
	return false, nil
}

func describe(r netlink.Route) string {
	var b strings.Builder
	dst := "default"
	if !isDefault(r.Dst) {
		dst = r.Dst.String()
	}
	b.WriteString(dst)
	if r.Gw != nil {
		b.WriteString(" via " + r.Gw.String())
	}
	if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
		b.WriteString(" dev " + link.Attrs().Name)
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	return b.String()
}

// addRoute adds r unless the table has it already, and reports whether it
// did, so that undo only removes what this call added.
func addRoute(r netlink.Route) (bool, error) {
	exists, err := routeExists(r)
	if err != nil || exists {
		return false, err
	}
	if err := netlink.RouteReplace(&r); err != nil {
		return false, fmt.Errorf("adding route %s: %w", describe(r), err)
	}
	return true, nil
}

func delRoute(r netlink.Route) error {
	if err := netlink.RouteDel(&r); err != nil && !notFound(err) {
		return fmt.Errorf("deleting route %s: %w", describe(r), err)
	}
	return nil
}

// flushTable deletes every route of table.
func flushTable(table int) error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := tableRoutes(fam, table)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Table != table {
				continue
			}
			errs = append(errs, delRoute(r))
		}
	}
	return errors.Join(errs...)
}

func rule(src, dst netip.Prefix, table, priority int) *netlink.Rule {
	r := netlink.NewRule()
	r.Table = table
	r.Priority = priority
	if src.IsValid() {
		r.Src = ipNet(src)
		r.Family = family(src.Addr().Is4())
	}
	if dst.IsValid() {
		r.Dst = ipNet(dst)
		r.Family = family(dst.Addr().Is4())
	}
	return r
}

// addRule adds r and reports whether it did (false if it was there).
func addRule(r *netlink.Rule) (bool, error) {
	if err := netlink.RuleAdd(r); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("adding rule %s: %w", r, err)
	}
	return true, nil
}

func delRule(r *netlink.Rule) error {
	if err := netlink.RuleDel(r); err != nil && !notFound(err) {
		return fmt.Errorf("deleting rule %s: %w", r, err)
	}
	return nil
}

// rulesTo lists the rules of table.
func rulesOf(table int) ([]netlink.Rule, error) {
	var out []netlink.Rule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := netlinksafe.RuleListFiltered(fam, &netlink.Rule{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("listing the rules of table %d: %w", table, err)
		}
		out = append(out, rules...)
	}
	return out, nil
}

func notFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) ||
		errors.As(err, &lnf) || errors.Is(err, os.ErrNotExist)
}

// linkByName returns nil, nil when the link does not exist.
func linkByName(name string) (netlink.Link, error) {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("finding link %s: %w", name, err)
	}
	return l, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// globalAddrs lists the global unicast addresses of link.
func globalAddrs(link netlink.Link, v4 bool) ([]netip.Addr, error) {
	addrs, err := netlinksafe.AddrList(link, family(v4))
	if err != nil {
		return nil, fmt.Errorf("listing the addresses of %s: %w", link.Attrs().Name, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}
