package ranges

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestSetCoalescesRuns(t *testing.T) {
	s := NewSet(true)
	a := func(x string) netip.Addr { return netip.MustParseAddr(x) }
	steps := []struct {
		op   string
		addr string
		ok   bool
		runs int
	}{
		{"add", "10.0.0.5", true, 1},
		{"add", "10.0.0.5", false, 1},
		{"add", "10.0.0.7", true, 2},
		{"add", "10.0.0.6", true, 1}, // joins both neighbours
		{"add", "10.0.0.4", true, 1}, // extends to the left
		{"add", "10.0.0.8", true, 1}, // extends to the right
		{"remove", "10.0.0.6", true, 2},
		{"remove", "10.0.0.6", false, 2},
		{"remove", "10.0.0.4", true, 2},
		{"remove", "10.0.0.8", true, 2},
		{"add", "fd00::1", false, 2}, // other family: ignored
		{"remove", "10.0.0.5", true, 1},
		{"remove", "10.0.0.7", true, 0},
	}
	for i, st := range steps {
		var ok bool
		if st.op == "add" {
			ok = s.Add(a(st.addr))
		} else {
			ok = s.Remove(a(st.addr))
		}
		if ok != st.ok || s.Runs() != st.runs {
			t.Fatalf("step %d %s %s = %v with %d runs; want %v with %d", i, st.op, st.addr, ok, s.Runs(), st.ok, st.runs)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after removing everything", s.Len())
	}
}

func TestSetEdgesOfTheAddressSpace(t *testing.T) {
	s := NewSet(false)
	last := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	first := netip.MustParseAddr("::")
	for _, a := range []netip.Addr{last, last.Prev(), first, first.Next()} {
		if !s.Add(a) {
			t.Fatalf("Add(%s) = false", a)
		}
	}
	if s.Runs() != 2 || s.Len() != 4 || !s.Contains(last) || !s.Contains(first) {
		t.Fatalf("runs %d, len %d", s.Runs(), s.Len())
	}
	if !s.Remove(last) || s.Contains(last) || !s.Contains(last.Prev()) {
		t.Fatal("Remove of the last address")
	}
}

// FuzzSet applies a sequence of adds and removes to a Set and to a map and
// checks they agree, including Each's order and the run count.
func FuzzSet(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 130, 4, 129, 5, 1})
	f.Add([]byte{255, 254, 253, 127, 126, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := NewSet(true)
		model := map[netip.Addr]bool{}
		for _, op := range ops {
			a := netip.AddrFrom4([4]byte{10, 0, 0, op & 0x7f})
			if op&0x80 == 0 {
				if s.Add(a) == model[a] {
					t.Fatalf("Add(%s) disagrees with the model", a)
				}
				model[a] = true
			} else {
				if s.Remove(a) != model[a] {
					t.Fatalf("Remove(%s) disagrees with the model", a)
				}
				delete(model, a)
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("Len = %d, model has %d", s.Len(), len(model))
		}
		runs, prev, n := 0, netip.Addr{}, 0
		s.Each(func(a netip.Addr) bool {
			if !model[a] || (prev.IsValid() && !prev.Less(a)) {
				t.Fatalf("Each yielded %s after %s", a, prev)
			}
			if !prev.IsValid() || prev.Next() != a {
				runs++
			}
			prev = a
			n++
			return true
		})
		if n != len(model) || runs != s.Runs() {
			t.Fatalf("Each yielded %d addresses in %d runs; want %d in %d", n, runs, len(model), s.Runs())
		}
	})
}

// nearlyFull16 returns a /16 pool with every address used but holes
// scattered free, the worst case for a walk that steps address by address.
func nearlyFull16(b *testing.B, holes int) (*Pool, *Set) {
	p := mustCompile(b, berthv1.IPPoolSpec{Subnet: "10.8.0.0/16", Gateway: ptr.To("10.8.0.1")})
	used := NewSet(true)
	r := rand.New(rand.NewPCG(5, 6))
	free := map[netip.Addr]bool{}
	for len(free) < holes {
		free[p.RandomStart(r)] = true
	}
	a, _ := p.Next(used, netip.Addr{})
	for i := int64(0); i < p.Total(); i++ {
		if !free[a] {
			used.Add(a)
		}
		a = a.Next()
		for !p.Contains(a) && a.Less(netip.MustParseAddr("10.9.0.0")) {
			a = a.Next()
		}
	}
	if p.Free(used) != int64(holes) {
		b.Fatalf("free = %d, want %d", p.Free(used), holes)
	}
	return p, used
}

// BenchmarkNextNearlyFull16 measures choosing a candidate (random start and
// walk) in a /16 with 65533 addresses of which only a few are free
// ("runs"), against the baseline of an address-by-address walk over a map
// of used addresses ("linear", what an allocator without an ordered view of
// runs does), in the same run.
func BenchmarkNextNearlyFull16(b *testing.B) {
	for _, holes := range []int{1, 16, 256} {
		p, used := nearlyFull16(b, holes)
		b.Run("free="+strconv.Itoa(holes)+"/runs", func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 8))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Next(used, p.RandomStart(r)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("free="+strconv.Itoa(holes)+"/linear", func(b *testing.B) {
			m := map[netip.Addr]bool{}
			used.Each(func(a netip.Addr) bool { m[a] = true; return true })
			r := rand.New(rand.NewPCG(7, 8))
			end := netip.MustParseAddr("10.8.255.255")
			for b.Loop() {
				a := p.RandomStart(r)
				for m[a] || !p.Contains(a) {
					if a = a.Next(); a == end {
						a = netip.MustParseAddr("10.8.0.0")
					}
				}
			}
		})
	}
}

// BenchmarkAddRemove measures keeping the view current: one address added
// and one removed in a set of 60000 scattered addresses.
func BenchmarkAddRemove(b *testing.B) {
	p := mustCompile(b, berthv1.IPPoolSpec{Subnet: "fd00:9::/64"})
	used := NewSet(false)
	r := rand.New(rand.NewPCG(9, 10))
	for used.Len() < 60000 {
		used.Add(p.RandomStart(r))
	}
	b.ReportAllocs()
	for b.Loop() {
		a := p.RandomStart(r)
		used.Add(a)
		used.Remove(a)
	}
}
