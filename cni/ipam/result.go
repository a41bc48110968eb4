package ipam

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
)

// fromAssignment is the IPAM result of an interface's assignment: its
// addresses with their gateways, its routes, a default route per family
// when the interface carries the pod's default route, and its DNS.
func fromAssignment(itf *assignment.Interface) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	gateways := map[bool]net.IP{}
	for i, a := range itf.Addresses {
		ipc, err := ipConfig(a.Address, a.Gateway)
		if err != nil {
			return nil, fmt.Errorf("addresses[%d]: %w", i, err)
		}
		res.IPs = append(res.IPs, ipc)
		if ipc.Gateway != nil {
			gateways[ipc.Address.IP.To4() != nil] = ipc.Gateway
		}
	}
	for i, r := range itf.Routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].dst: %q is not a CIDR", i, r.Dst)
		}
		route := &types.Route{Dst: *prefixNet(dst.Masked())}
		if r.GW != "" {
			gw, err := netip.ParseAddr(r.GW)
			if err != nil {
				return nil, fmt.Errorf("routes[%d].gw: %q is not an IP address", i, r.GW)
			}
			route.GW = gw.AsSlice()
		}
		res.Routes = append(res.Routes, route)
	}
	if itf.DefaultRoute {
		res.Routes = append(res.Routes, defaultRoutes(gateways)...)
	}
	if itf.DNS != nil {
		res.DNS = types.DNS{
			Nameservers: slices.Clone(itf.DNS.Nameservers),
			Domain:      itf.DNS.Domain,
			Search:      slices.Clone(itf.DNS.Search),
			Options:     slices.Clone(itf.DNS.Options),
		}
	}
	return res, nil
}

// fromIPs is the IPAM result of addresses that came through the "ips"
// runtimeConfig capability: each must lie in one of the pools of the
// configuration, which gives its prefix length, gateway, routes and DNS.
// Multus's own default-route handling decides the default route there.
func fromIPs(ips []string, pools []cniconf.PoolData) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	families := map[bool]bool{}
	seenPools := map[string]bool{}
	for i, s := range ips {
		addr, bits, err := parseAddrOrPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("runtimeConfig.ips[%d]: %w", i, err)
		}
		pool := poolOf(addr, pools)
		if pool == nil {
			return nil, fmt.Errorf("runtimeConfig.ips[%d]: %s lies in none of the pools of ipam.pools", i, s)
		}
		subnet := pool.Prefix()
		if bits >= 0 && bits != subnet.Bits() {
			return nil, fmt.Errorf("runtimeConfig.ips[%d]: %s has prefix length %d but pool %q has subnet %s", i, s, bits, pool.Name, subnet)
		}
		if families[addr.Is4()] {
			return nil, fmt.Errorf("runtimeConfig.ips[%d]: %s is a second address of its IP family", i, s)
		}
		families[addr.Is4()] = true
		ipc := &current.IPConfig{Address: *prefixNet(netip.PrefixFrom(addr, subnet.Bits()))}
		if pool.Gateway != "" {
			gw, _ := netip.ParseAddr(pool.Gateway)
			ipc.Gateway = gw.AsSlice()
		}
		res.IPs = append(res.IPs, ipc)
		if seenPools[pool.Name] {
			continue
		}
		seenPools[pool.Name] = true
		for _, r := range pool.Routes {
			res.Routes = append(res.Routes, r.Copy())
		}
		if pool.DNS != nil {
			mergeDNS(&res.DNS, pool.DNS)
		}
	}
	return res, nil
}

func ipConfig(address, gateway string) (*current.IPConfig, error) {
	p, err := netip.ParsePrefix(address)
	if err != nil {
		return nil, fmt.Errorf("address: %q is not an address in CIDR form", address)
	}
	ipc := &current.IPConfig{Address: *prefixNet(p)}
	if gateway != "" {
		gw, err := netip.ParseAddr(gateway)
		if err != nil {
			return nil, fmt.Errorf("gateway: %q is not an IP address", gateway)
		}
		ipc.Gateway = gw.AsSlice()
	}
	return ipc, nil
}

func defaultRoutes(gateways map[bool]net.IP) []*types.Route {
	var out []*types.Route
	for _, v4 := range []bool{true, false} {
		gw := gateways[v4]
		if gw == nil {
			continue
		}
		dst := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if v4 {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		out = append(out, &types.Route{Dst: *prefixNet(dst), GW: gw})
	}
	return out
}

// prefixNet keeps the host bits: an interface address, not a network.
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// parseAddrOrPrefix accepts "10.0.0.5" (bits -1) and "10.0.0.5/24", the two
// forms Multus passes in "ips".
func parseAddrOrPrefix(s string) (netip.Addr, int, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), p.Bits(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("%q is neither an IP address nor one in CIDR form", s)
	}
	return a.Unmap(), -1, nil
}

func poolOf(addr netip.Addr, pools []cniconf.PoolData) *cniconf.PoolData {
	var best *cniconf.PoolData
	for i := range pools {
		p := pools[i].Prefix()
		if p.Contains(addr) && (best == nil || p.Bits() > best.Prefix().Bits()) {
			best = &pools[i]
		}
	}
	return best
}

func mergeDNS(dst *types.DNS, src *types.DNS) {
	add := func(to []string, from []string) []string {
		for _, s := range from {
			if !slices.Contains(to, s) {
				to = append(to, s)
			}
		}
		return to
	}
	dst.Nameservers = add(dst.Nameservers, src.Nameservers)
	dst.Search = add(dst.Search, src.Search)
	dst.Options = add(dst.Options, src.Options)
	if dst.Domain == "" {
		dst.Domain = src.Domain
	}
}

// sameAddresses compares the addresses of two results as sets, ignoring
// order; it is how ADD's cross-check and CHECK decide.
func sameAddresses(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for _, p := range a {
		if !slices.Contains(b, p) {
			return false
		}
	}
	return true
}

func prefixes(ips []*current.IPConfig) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ips))
	for _, ipc := range ips {
		if p, ok := netipPrefix(ipc.Address); ok {
			out = append(out, p)
		}
	}
	return out
}

func netipPrefix(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
