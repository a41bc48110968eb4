// Package ranges is the pure, in-memory half of the allocator: it turns an
// IPPool's spec into the ordered set of addresses the pool may hand out and
// walks it, around a Set of used addresses, to the next free candidate. It
// makes no API call; persisting a choice is the allocator's job.
package ranges

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// span is an inclusive range of addresses the pool may hand out.
type span struct{ first, last u128 }

// Pool is the compiled address space of one IPPool: the addresses of spec.ips
// (or the whole subnet) minus spec.excludeIPs, the gateway, and the addresses
// a host must not take (the IPv4 network and broadcast addresses, the IPv6
// subnet-router anycast address). Its size is independent of the subnet's:
// a few spans, however large each is.
type Pool struct {
	prefix netip.Prefix
	is4    bool
	spans  []span
	total  u128
}

// Compile checks spec and builds its Pool. Errors name the field at fault,
// e.g. `spec.ips[2]: "10.0.0.9-10.0.0.1": first address after last`.
func Compile(spec *berthv1.IPPoolSpec) (*Pool, error) {
	prefix, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return nil, fmt.Errorf("spec.subnet: %q is not a CIDR: %w", spec.Subnet, err)
	}
	if prefix.Masked() != prefix {
		return nil, fmt.Errorf("spec.subnet: %q has host bits set; the network is %s", spec.Subnet, prefix.Masked())
	}
	p := &Pool{prefix: prefix, is4: prefix.Addr().Is4()}
	first, last := fromAddr(prefix.Addr()), lastOf(prefix)

	var include []span
	if len(spec.IPs) == 0 {
		include = []span{{first, last}}
	}
	for i, s := range spec.IPs {
		sp, err := p.parseSpan(s)
		if err != nil {
			return nil, fmt.Errorf("spec.ips[%d]: %w", i, err)
		}
		include = append(include, sp)
	}
	var exclude []span
	for i, s := range spec.ExcludeIPs {
		sp, err := p.parseSpan(s)
		if err != nil {
			return nil, fmt.Errorf("spec.excludeIPs[%d]: %w", i, err)
		}
		exclude = append(exclude, sp)
	}
	if spec.Gateway != nil && *spec.Gateway != "" {
		gw, err := netip.ParseAddr(*spec.Gateway)
		if err != nil {
			return nil, fmt.Errorf("spec.gateway: %q is not an IP address", *spec.Gateway)
		}
		if !prefix.Contains(gw) {
			return nil, fmt.Errorf("spec.gateway: %s is not inside spec.subnet %s", gw, prefix)
		}
		exclude = append(exclude, span{fromAddr(gw), fromAddr(gw)})
	}
	// Addresses no host may take: IPv4 network and broadcast (RFC 3021 lets a
	// /31 use both), the IPv6 subnet-router anycast (RFC 6164 exempts /127).
	if p.is4 && prefix.Bits() <= 30 {
		exclude = append(exclude, span{first, first}, span{last, last})
	}
	if !p.is4 && prefix.Bits() <= 126 {
		exclude = append(exclude, span{first, first})
	}
	p.spans = subtract(merge(include), merge(exclude))
	for _, s := range p.spans {
		p.total = p.total.add(s.last.sub(s.first).inc())
	}
	return p, nil
}

// lastOf returns the last address of prefix.
func lastOf(prefix netip.Prefix) u128 {
	first := fromAddr(prefix.Addr())
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	var mask u128
	switch {
	case hostBits >= 128:
		mask = u128{^uint64(0), ^uint64(0)}
	case hostBits >= 64:
		mask = u128{hi: 1<<(hostBits-64) - 1, lo: ^uint64(0)}
	default:
		mask = u128{lo: 1<<hostBits - 1}
	}
	return u128{first.hi | mask.hi, first.lo | mask.lo}
}

// ParseRange parses "addr" or "first-last" (inclusive).
func ParseRange(s string) (first, last netip.Addr, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if first, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil {
		return first, last, fmt.Errorf("%q is not an IP address or a range first-last: %w", s, err)
	}
	last = first
	if isRange {
		if last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil {
			return first, last, fmt.Errorf("%q is not an IP address or a range first-last: %w", s, err)
		}
	}
	if first.Zone() != "" || last.Zone() != "" {
		return first, last, fmt.Errorf("%q: addresses must not have a zone", s)
	}
	first, last = first.Unmap(), last.Unmap()
	if first.Is4() != last.Is4() {
		return first, last, fmt.Errorf("%q: both ends must be of the same IP family", s)
	}
	if last.Less(first) {
		return first, last, fmt.Errorf("%q: first address is after the last", s)
	}
	return first, last, nil
}

func (p *Pool) parseSpan(s string) (span, error) {
	first, last, err := ParseRange(s)
	if err != nil {
		return span{}, err
	}
	if first.Is4() != p.is4 {
		return span{}, fmt.Errorf("%q is not of the IP family of spec.subnet %s", s, p.prefix)
	}
	if !p.prefix.Contains(first) || !p.prefix.Contains(last) {
		return span{}, fmt.Errorf("%q is not inside spec.subnet %s", s, p.prefix)
	}
	return span{fromAddr(first), fromAddr(last)}, nil
}

// merge sorts spans and joins overlapping and adjacent ones.
func merge(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	sort.Slice(in, func(i, j int) bool { return in[i].first.less(in[j].first) })
	out := []span{in[0]}
	for _, s := range in[1:] {
		cur := &out[len(out)-1]
		// Overlapping or adjacent (s.first <= cur.last+1); the last IPv6
		// address has no successor.
		if cur.last == (u128{^uint64(0), ^uint64(0)}) || !cur.last.inc().less(s.first) {
			if cur.last.less(s.last) {
				cur.last = s.last
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// subtract removes the merged spans ex from the merged spans in.
func subtract(in, ex []span) []span {
	var out []span
	j := 0
	for _, s := range in {
		cur := s
		keep := true
		for j < len(ex) && ex[j].last.less(cur.first) {
			j++
		}
		for k := j; k < len(ex) && !cur.last.less(ex[k].first); k++ {
			e := ex[k]
			if cur.first.less(e.first) {
				out = append(out, span{cur.first, e.first.dec()})
			}
			if !e.last.less(cur.last) {
				keep = false
				break
			}
			cur.first = e.last.inc()
		}
		if keep {
			out = append(out, cur)
		}
	}
	return out
}

// Prefix is the pool's subnet.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// Is4 reports whether the pool is IPv4.
func (p *Pool) Is4() bool { return p.is4 }

// Total is the number of addresses the pool may hand out, capped at the
// largest int64.
func (p *Pool) Total() int64 { return p.total.saturate() }

// Spans is the number of disjoint ranges the pool hands out from.
func (p *Pool) Spans() int { return len(p.spans) }

// Contains reports whether the pool may hand out a.
func (p *Pool) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Is4() != p.is4 || a.Zone() != "" {
		return false
	}
	x := fromAddr(a)
	i := sort.Search(len(p.spans), func(i int) bool { return !p.spans[i].last.less(x) })
	return i < len(p.spans) && !x.less(p.spans[i].first)
}

// Used counts the addresses of used that the pool may hand out (used may
// hold addresses the spec no longer includes).
func (p *Pool) Used(used *Set) int64 { return p.used(used).saturate() }

func (p *Pool) used(used *Set) u128 {
	var n u128
	if used.is4 != p.is4 {
		return n
	}
	for _, s := range p.spans {
		n = n.add(used.countIn(s.first, s.last))
	}
	return n
}

// Free is Total minus Used.
func (p *Pool) Free(used *Set) int64 {
	return p.total.sub(p.used(used)).saturate()
}

// Rand is the source of random start offsets; *math/rand/v2.Rand is one.
type Rand interface{ Uint64() uint64 }

// RandomStart picks an address of the pool uniformly at random, so that
// replicas walking from it rarely race for the same free address. It
// returns the invalid Addr for an empty pool.
func (p *Pool) RandomStart(r Rand) netip.Addr {
	if p.total.isZero() {
		return netip.Addr{}
	}
	return p.at(randBelow(r, p.total))
}

// randBelow returns a uniform number in [0, n) by rejection sampling.
func randBelow(r Rand, n u128) u128 {
	m := n.dec()
	var mask u128
	if m.hi != 0 {
		mask = u128{hi: fill(m.hi), lo: ^uint64(0)}
	} else {
		mask = u128{lo: fill(m.lo)}
	}
	for {
		x := u128{hi: r.Uint64() & mask.hi, lo: r.Uint64() & mask.lo}
		if !m.less(x) {
			return x
		}
	}
}

// fill sets every bit below the highest set bit of x.
func fill(x uint64) uint64 {
	for s := uint(1); s < 64; s <<= 1 {
		x |= x >> s
	}
	return x
}

// at returns the k-th address of the pool (k < total).
func (p *Pool) at(k u128) netip.Addr {
	for _, s := range p.spans {
		size := s.last.sub(s.first).inc()
		if k.less(size) {
			return s.first.add(k).addr(p.is4)
		}
		k = k.sub(size)
	}
	return netip.Addr{}
}

// ErrNoFree is returned by Next when every address of the pool is used.
var ErrNoFree = errors.New("no free address")

// Next returns the first address of the pool at or after start that is not
// in used, wrapping around to the pool's first address. The walk jumps over
// whole runs of used addresses, so it costs O((runs crossed + spans) log runs)
// and stays cheap in a nearly full pool. An invalid start means the first
// address.
func (p *Pool) Next(used *Set, start netip.Addr) (netip.Addr, error) {
	if len(p.spans) == 0 {
		return netip.Addr{}, ErrNoFree
	}
	x := p.spans[0].first
	if start.IsValid() && start.Unmap().Is4() == p.is4 {
		x = fromAddr(start.Unmap())
	}
	if a, ok := p.nextFrom(used, x, p.spans[len(p.spans)-1].last); ok {
		return a, nil
	}
	if x != p.spans[0].first {
		if a, ok := p.nextFrom(used, p.spans[0].first, x.dec()); ok {
			return a, nil
		}
	}
	return netip.Addr{}, ErrNoFree
}

// nextFrom is Next without wrapping, bounded by limit (inclusive).
func (p *Pool) nextFrom(used *Set, x, limit u128) (netip.Addr, bool) {
	i := sort.Search(len(p.spans), func(i int) bool { return !p.spans[i].last.less(x) })
	for i < len(p.spans) {
		s := p.spans[i]
		if x.less(s.first) {
			x = s.first
		}
		if limit.less(x) {
			return netip.Addr{}, false
		}
		r, taken := run{}, false
		if used.is4 == p.is4 {
			r, taken = used.runAt(x)
		}
		if !taken {
			return x.addr(p.is4), true
		}
		if !r.last.less(s.last) {
			// The run covers the rest of this span; next span.
			i++
			continue
		}
		x = r.last.inc()
	}
	return netip.Addr{}, false
}
