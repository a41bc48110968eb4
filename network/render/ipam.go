package render

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// IPAM is the berth-ipam section of a main plugin: the routing data of pools,
// sorted by name and without duplicates, so that the same pools always give
// the same bytes. A route without a next hop gets the pool's gateway, as the
// IPPool API says.
func IPAM(pools []berthv1.IPPool, kubeconfig string) cniconf.IPAMConfig {
	sorted := slices.Clone(pools)
	slices.SortFunc(sorted, func(a, b berthv1.IPPool) int { return cmp.Compare(a.Name, b.Name) })
	sorted = slices.CompactFunc(sorted, func(a, b berthv1.IPPool) bool { return a.Name == b.Name })
	cfg := cniconf.IPAMConfig{Type: cniconf.IPAMType, Kubeconfig: kubeconfig}
	for i := range sorted {
		cfg.Pools = append(cfg.Pools, poolData(&sorted[i]))
	}
	return cfg
}

// poolData copies what berth-ipam needs of a pool. Values that do not parse
// are kept out rather than guessed; validIPAM reports them.
func poolData(p *berthv1.IPPool) cniconf.PoolData {
	d := cniconf.PoolData{Name: p.Name, Subnet: p.Spec.Subnet}
	var gw net.IP
	if p.Spec.Gateway != nil {
		d.Gateway = *p.Spec.Gateway
		gw = net.ParseIP(*p.Spec.Gateway)
	}
	for _, r := range p.Spec.Routes {
		_, dst, err := net.ParseCIDR(r.Dst)
		if err != nil {
			continue
		}
		route := types.Route{Dst: *dst, GW: gw}
		if r.GW != nil {
			route.GW = net.ParseIP(*r.GW)
		}
		d.Routes = append(d.Routes, route)
	}
	if dns := p.Spec.DNS; dns != nil {
		d.DNS = &types.DNS{Nameservers: dns.Nameservers, Domain: dns.Domain, Search: dns.Search, Options: dns.Options}
	}
	return d
}

// validIPAM rejects pool data the API server should already have refused,
// naming the pool and the field, so a bad pool never reaches a node silently.
func validIPAM(cfg cniconf.IPAMConfig) error {
	for _, d := range cfg.Pools {
		subnet, err := netip.ParsePrefix(d.Subnet)
		if err != nil {
			return fmt.Errorf("ippool %q: spec.subnet %q is not a CIDR", d.Name, d.Subnet)
		}
		if d.Gateway != "" {
			gw, err := netip.ParseAddr(d.Gateway)
			if err != nil || !subnet.Contains(gw) {
				return fmt.Errorf("ippool %q: spec.gateway %q is not an address of %s", d.Name, d.Gateway, d.Subnet)
			}
		}
	}
	return nil
}
