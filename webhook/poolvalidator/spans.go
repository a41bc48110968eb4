package poolvalidator

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/berth-io/berth/allocator/ranges"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// span is an inclusive range of addresses.
type span struct{ first, last netip.Addr }

// handedOut is the set of addresses a pool may hand out, as sorted disjoint
// spans: spec.ips (or the whole subnet) minus spec.excludeIPs. Two pools
// conflict only where these meet; the subnets of two pools may well overlap
// when their ranges do not.
func handedOut(spec *berthv1.IPPoolSpec) ([]span, error) {
	prefix, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return nil, fmt.Errorf("spec.subnet: %q is not a CIDR", spec.Subnet)
	}
	var include []span
	if len(spec.IPs) == 0 {
		include = []span{{prefix.Masked().Addr(), lastAddr(prefix)}}
	}
	for i, s := range spec.IPs {
		first, last, err := ranges.ParseRange(s)
		if err != nil {
			return nil, fmt.Errorf("spec.ips[%d]: %w", i, err)
		}
		include = append(include, span{first, last})
	}
	out := normalize(include)
	for i, s := range spec.ExcludeIPs {
		first, last, err := ranges.ParseRange(s)
		if err != nil {
			return nil, fmt.Errorf("spec.excludeIPs[%d]: %w", i, err)
		}
		out = subtract(out, span{first, last})
	}
	return out, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for bit := p.Bits(); bit < len(a)*8; bit++ {
		a[bit/8] |= 0x80 >> (bit % 8)
	}
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// normalize sorts spans and merges overlapping or adjacent ones.
func normalize(in []span) []span {
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b span) int { return a.first.Compare(b.first) })
	var out []span
	for _, sp := range s {
		if n := len(out); n > 0 {
			prev := &out[n-1]
			if next := prev.last.Next(); sp.first.Compare(prev.last) <= 0 || (next.IsValid() && sp.first == next) {
				if sp.last.Compare(prev.last) > 0 {
					prev.last = sp.last
				}
				continue
			}
		}
		out = append(out, sp)
	}
	return out
}

// subtract removes x from sorted disjoint spans.
func subtract(in []span, x span) []span {
	var out []span
	for _, s := range in {
		if s.last.Compare(x.first) < 0 || s.first.Compare(x.last) > 0 {
			out = append(out, s)
			continue
		}
		if s.first.Compare(x.first) < 0 {
			out = append(out, span{s.first, x.first.Prev()})
		}
		if s.last.Compare(x.last) > 0 {
			out = append(out, span{x.last.Next(), s.last})
		}
	}
	return out
}

// overlap returns the first span common to two sorted disjoint span lists.
func overlap(a, b []span) (span, bool) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		first, last := maxAddr(a[i].first, b[j].first), minAddr(a[i].last, b[j].last)
		if first.Compare(last) <= 0 {
			return span{first, last}, true
		}
		if a[i].last.Compare(b[j].last) < 0 {
			i++
		} else {
			j++
		}
	}
	return span{}, false
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}

func (s span) String() string {
	if s.first == s.last {
		return s.first.String()
	}
	return s.first.String() + "-" + s.last.String()
}

// contains tells whether the address text a lies in spans.
func contains(spans []span, a string) bool {
	addr, err := netip.ParseAddr(a)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, s := range spans {
		if s.first.Compare(addr) <= 0 && addr.Compare(s.last) <= 0 {
			return true
		}
	}
	return false
}
