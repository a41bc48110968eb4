package ranges

import (
	"net/netip"

	"github.com/google/btree"
)

// run is an inclusive range of used addresses. Set keeps runs disjoint and
// never adjacent, so a nearly full pool is a handful of runs and the walk to
// a free address jumps over each in one step.
type run struct{ first, last u128 }

// Set is a set of addresses of one family, stored as coalesced runs in a
// B-tree: memory grows with the number of runs (at most the number of
// addresses added), never with the size of the subnet they come from.
// It is not safe for concurrent use.
type Set struct {
	is4  bool
	tree *btree.BTreeG[run]
	n    int
}

// NewSet returns an empty set for IPv4 (is4) or IPv6 addresses.
func NewSet(is4 bool) *Set {
	return &Set{is4: is4, tree: btree.NewG(16, func(a, b run) bool { return a.first.less(b.first) })}
}

// Len is the number of addresses in the set.
func (s *Set) Len() int { return s.n }

// Runs is the number of maximal runs of consecutive addresses.
func (s *Set) Runs() int { return s.tree.Len() }

// runAt returns the run containing x.
func (s *Set) runAt(x u128) (run, bool) {
	var found run
	ok := false
	s.tree.DescendLessOrEqual(run{first: x}, func(r run) bool {
		found, ok = r, !r.last.less(x)
		return false
	})
	return found, ok
}

// Contains reports whether a is in the set.
func (s *Set) Contains(a netip.Addr) bool {
	if !s.family(a) {
		return false
	}
	_, ok := s.runAt(fromAddr(a))
	return ok
}

func (s *Set) family(a netip.Addr) bool { return a.IsValid() && a.Unmap().Is4() == s.is4 }

// Add inserts a and reports whether it was absent. Addresses of the other
// family are ignored.
func (s *Set) Add(a netip.Addr) bool {
	if !s.family(a) {
		return false
	}
	x := fromAddr(a.Unmap())
	var prev run
	hasPrev := false
	s.tree.DescendLessOrEqual(run{first: x}, func(r run) bool {
		prev, hasPrev = r, true
		return false
	})
	if hasPrev && !prev.last.less(x) {
		return false
	}
	joinPrev := hasPrev && prev.last.inc() == x
	next, joinNext := run{}, false
	if x.lo != ^uint64(0) || x.hi != ^uint64(0) {
		next, joinNext = s.tree.Get(run{first: x.inc()})
	}
	switch {
	case joinPrev && joinNext:
		s.tree.Delete(next)
		s.tree.ReplaceOrInsert(run{prev.first, next.last})
	case joinPrev:
		s.tree.ReplaceOrInsert(run{prev.first, x})
	case joinNext:
		s.tree.Delete(next)
		s.tree.ReplaceOrInsert(run{x, next.last})
	default:
		s.tree.ReplaceOrInsert(run{x, x})
	}
	s.n++
	return true
}

// Remove deletes a and reports whether it was present.
func (s *Set) Remove(a netip.Addr) bool {
	if !s.family(a) {
		return false
	}
	x := fromAddr(a.Unmap())
	r, ok := s.runAt(x)
	if !ok {
		return false
	}
	s.tree.Delete(r)
	if r.first.less(x) {
		s.tree.ReplaceOrInsert(run{r.first, x.dec()})
	}
	if x.less(r.last) {
		s.tree.ReplaceOrInsert(run{x.inc(), r.last})
	}
	s.n--
	return true
}

// Each calls f for every address in ascending order until f returns false.
func (s *Set) Each(f func(netip.Addr) bool) {
	s.tree.Ascend(func(r run) bool {
		for x := r.first; ; x = x.inc() {
			if !f(x.addr(s.is4)) {
				return false
			}
			if x == r.last {
				return true
			}
		}
	})
}

// countIn counts the addresses of the set inside [first, last].
func (s *Set) countIn(first, last u128) u128 {
	var n u128
	start := first
	if r, ok := s.runAt(first); ok {
		start = r.first
	}
	s.tree.AscendGreaterOrEqual(run{first: start}, func(r run) bool {
		if last.less(r.first) {
			return false
		}
		lo, hi := r.first, r.last
		if lo.less(first) {
			lo = first
		}
		if last.less(hi) {
			hi = last
		}
		n = n.add(hi.sub(lo).inc())
		return true
	})
	return n
}
