package ranges

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name    string
		spec    berthv1.IPPoolSpec
		total   int64
		in      []string // addresses the pool hands out
		out     []string // addresses it never hands out
		wantErr string
	}{{
		name:  "whole IPv4 /24 without network, broadcast and gateway",
		spec:  berthv1.IPPoolSpec{Subnet: "10.6.0.0/24", Gateway: ptr.To("10.6.0.1")},
		total: 253,
		in:    []string{"10.6.0.2", "10.6.0.254"},
		out:   []string{"10.6.0.0", "10.6.0.1", "10.6.0.255", "10.6.1.0", "fd00::1"},
	}, {
		name:  "ranges and single addresses, merged, minus excludes",
		spec:  berthv1.IPPoolSpec{Subnet: "10.6.0.0/16", IPs: []string{"10.6.212.100-10.6.212.200", "10.6.212.150-10.6.212.210", "10.6.1.1", "10.6.212.211"}, ExcludeIPs: []string{"10.6.212.120-10.6.212.129", "10.6.212.211"}},
		total: 101 + 10 + 1 - 10,
		in:    []string{"10.6.212.100", "10.6.212.119", "10.6.212.130", "10.6.212.210", "10.6.1.1"},
		out:   []string{"10.6.212.99", "10.6.212.120", "10.6.212.129", "10.6.212.211", "10.6.1.2"},
	}, {
		name:  "ranges may include the network address: still never handed out",
		spec:  berthv1.IPPoolSpec{Subnet: "192.168.0.0/30", IPs: []string{"192.168.0.0-192.168.0.3"}},
		total: 2,
		in:    []string{"192.168.0.1", "192.168.0.2"},
		out:   []string{"192.168.0.0", "192.168.0.3"},
	}, {
		name:  "IPv4 /31 uses both addresses (RFC 3021)",
		spec:  berthv1.IPPoolSpec{Subnet: "192.168.0.0/31"},
		total: 2,
		in:    []string{"192.168.0.0", "192.168.0.1"},
	}, {
		name:  "IPv4 /32 is one address",
		spec:  berthv1.IPPoolSpec{Subnet: "192.168.0.7/32"},
		total: 1,
		in:    []string{"192.168.0.7"},
	}, {
		name:  "IPv6 /64 without the subnet-router anycast and gateway",
		spec:  berthv1.IPPoolSpec{Subnet: "fd00:6::/64", Gateway: ptr.To("fd00:6::1")},
		total: 1<<63 - 1, // 2^64-2 saturates
		in:    []string{"fd00:6::2", "fd00:6::ffff:ffff:ffff:ffff"},
		out:   []string{"fd00:6::", "fd00:6::1", "fd00:7::2", "10.0.0.1"},
	}, {
		name:  "IPv6 /120 counts exactly",
		spec:  berthv1.IPPoolSpec{Subnet: "fd00::/120", ExcludeIPs: []string{"fd00::10-fd00::1f"}},
		total: 256 - 1 - 16,
		in:    []string{"fd00::1", "fd00::ff", "fd00::20"},
		out:   []string{"fd00::", "fd00::10", "fd00::1f"},
	}, {
		name:  "IPv6 /127 uses both addresses (RFC 6164)",
		spec:  berthv1.IPPoolSpec{Subnet: "fd00::/127"},
		total: 2,
		in:    []string{"fd00::", "fd00::1"},
	}, {
		name:  "the last IPv6 address",
		spec:  berthv1.IPPoolSpec{Subnet: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", IPs: []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		total: 2,
		in:    []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}, {
		name:  "everything excluded is an empty pool, not an error",
		spec:  berthv1.IPPoolSpec{Subnet: "10.0.0.0/30", ExcludeIPs: []string{"10.0.0.1-10.0.0.2"}},
		total: 0,
		out:   []string{"10.0.0.1"},
	}, {
		name:    "malformed subnet",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0"},
		wantErr: `spec.subnet: "10.0.0.0" is not a CIDR`,
	}, {
		name:    "host bits in subnet",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.1/24"},
		wantErr: `spec.subnet: "10.0.0.1/24" has host bits set; the network is 10.0.0.0/24`,
	}, {
		name:    "reversed range",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.1", "10.0.0.9-10.0.0.2"}},
		wantErr: `spec.ips[1]: "10.0.0.9-10.0.0.2": first address is after the last`,
	}, {
		name:    "range outside the subnet",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.200-10.0.1.2"}},
		wantErr: `spec.ips[0]: "10.0.0.200-10.0.1.2" is not inside spec.subnet 10.0.0.0/24`,
	}, {
		name:    "exclude of the other family",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", ExcludeIPs: []string{"fd00::1"}},
		wantErr: `spec.excludeIPs[0]: "fd00::1" is not of the IP family of spec.subnet 10.0.0.0/24`,
	}, {
		name:    "garbage in excludeIPs",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", ExcludeIPs: []string{"10.0.0.1-x"}},
		wantErr: `spec.excludeIPs[0]: "10.0.0.1-x" is not an IP address or a range first-last`,
	}, {
		name:    "mixed-family range",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.1-fd00::1"}},
		wantErr: `spec.ips[0]: "10.0.0.1-fd00::1": both ends must be of the same IP family`,
	}, {
		name:    "gateway outside the subnet",
		spec:    berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", Gateway: ptr.To("10.0.1.1")},
		wantErr: `spec.gateway: 10.0.1.1 is not inside spec.subnet 10.0.0.0/24`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(&tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Compile error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Total() != tt.total {
				t.Errorf("Total = %d, want %d", p.Total(), tt.total)
			}
			for _, s := range tt.in {
				if !p.Contains(netip.MustParseAddr(s)) {
					t.Errorf("Contains(%s) = false, want true", s)
				}
			}
			for _, s := range tt.out {
				if p.Contains(netip.MustParseAddr(s)) {
					t.Errorf("Contains(%s) = true, want false", s)
				}
			}
		})
	}
}

func mustCompile(t testing.TB, spec berthv1.IPPoolSpec) *Pool {
	t.Helper()
	p, err := Compile(&spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNextWalksSpansAroundUsedRunsAndWraps(t *testing.T) {
	p := mustCompile(t, berthv1.IPPoolSpec{Subnet: "10.0.0.0/24", IPs: []string{"10.0.0.10-10.0.0.14", "10.0.0.20-10.0.0.21"}})
	used := NewSet(true)
	for _, s := range []string{"10.0.0.10", "10.0.0.11", "10.0.0.13", "10.0.0.14", "10.0.0.20"} {
		used.Add(netip.MustParseAddr(s))
	}
	tests := []struct{ start, want string }{
		{"", "10.0.0.12"},
		{"10.0.0.10", "10.0.0.12"},
		{"10.0.0.13", "10.0.0.21"}, // run 13-14 ends the span; next span, 20 used
		{"10.0.0.21", "10.0.0.21"},
		{"10.0.0.22", "10.0.0.12"}, // past the last span: wraps
		{"10.0.0.1", "10.0.0.12"},  // before the first span
		{"fd00::1", "10.0.0.12"},   // other family: from the start
	}
	for _, tt := range tests {
		var start netip.Addr
		if tt.start != "" {
			start = netip.MustParseAddr(tt.start)
		}
		got, err := p.Next(used, start)
		if err != nil || got.String() != tt.want {
			t.Errorf("Next(%q) = %v, %v; want %s", tt.start, got, err, tt.want)
		}
	}
	used.Add(netip.MustParseAddr("10.0.0.12"))
	used.Add(netip.MustParseAddr("10.0.0.21"))
	if got, err := p.Next(used, netip.MustParseAddr("10.0.0.14")); !errors.Is(err, ErrNoFree) {
		t.Fatalf("Next in a full pool = %v, %v; want ErrNoFree", got, err)
	}
	if p.Free(used) != 0 || p.Used(used) != 7 {
		t.Fatalf("Free, Used = %d, %d; want 0, 7", p.Free(used), p.Used(used))
	}
	// Addresses used outside the pool's spans do not count as used.
	used.Add(netip.MustParseAddr("10.0.0.99"))
	if p.Used(used) != 7 {
		t.Fatalf("Used counts an address outside the pool: %d", p.Used(used))
	}
}

// TestNextHandsOutEveryAddressOnce fills pools address by address from random
// starts and checks that each address comes out exactly once, that nothing
// outside the pool does, and that the pool then reports itself full.
func TestNextHandsOutEveryAddressOnce(t *testing.T) {
	specs := []berthv1.IPPoolSpec{
		{Subnet: "10.1.0.0/22", Gateway: ptr.To("10.1.0.1"), ExcludeIPs: []string{"10.1.1.0-10.1.1.255", "10.1.3.7"}},
		{Subnet: "fd00:1::/118", IPs: []string{"fd00:1::-fd00:1::1ff", "fd00:1::300-fd00:1::3ff"}, ExcludeIPs: []string{"fd00:1::10"}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, spec := range specs {
		p := mustCompile(t, spec)
		used := NewSet(p.Is4())
		seen := map[netip.Addr]bool{}
		for i := int64(0); i < p.Total(); i++ {
			a, err := p.Next(used, p.RandomStart(r))
			if err != nil {
				t.Fatalf("%s: Next after %d of %d: %v", spec.Subnet, i, p.Total(), err)
			}
			if seen[a] || !p.Contains(a) {
				t.Fatalf("%s: Next returned %s twice or outside the pool", spec.Subnet, a)
			}
			seen[a] = true
			used.Add(a)
		}
		if _, err := p.Next(used, p.RandomStart(r)); !errors.Is(err, ErrNoFree) {
			t.Fatalf("%s: full pool: Next error = %v", spec.Subnet, err)
		}
		if used.Runs() > p.Spans() {
			t.Errorf("%s: a full pool should coalesce into at most one run per span: %d runs, %d spans", spec.Subnet, used.Runs(), p.Spans())
		}
	}
}

func TestRandomStartIsInPoolAndSpread(t *testing.T) {
	p := mustCompile(t, berthv1.IPPoolSpec{Subnet: "fd00:2::/48", IPs: []string{"fd00:2::5", "fd00:2:0:8000::-fd00:2:0:ffff:ffff:ffff:ffff:ffff"}})
	r := rand.New(rand.NewPCG(3, 4))
	high := 0
	for i := 0; i < 1000; i++ {
		a := p.RandomStart(r)
		if !p.Contains(a) {
			t.Fatalf("RandomStart returned %s, outside the pool", a)
		}
		if a != netip.MustParseAddr("fd00:2::5") {
			high++
		}
	}
	// One address against 2^79: the single address must (almost) never win.
	if high < 990 {
		t.Fatalf("RandomStart is not uniform: %d of 1000 in the large span", high)
	}
	empty := mustCompile(t, berthv1.IPPoolSpec{Subnet: "10.0.0.0/30", ExcludeIPs: []string{"10.0.0.1-10.0.0.2"}})
	if a := empty.RandomStart(r); a.IsValid() {
		t.Fatalf("RandomStart of an empty pool = %s", a)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in, first, last, err string
	}{
		{in: "10.0.0.1", first: "10.0.0.1", last: "10.0.0.1"},
		{in: "10.0.0.1-10.0.0.9", first: "10.0.0.1", last: "10.0.0.9"},
		{in: " 10.0.0.1 - 10.0.0.9 ", first: "10.0.0.1", last: "10.0.0.9"},
		{in: "::ffff:10.0.0.1", first: "10.0.0.1", last: "10.0.0.1"},
		{in: "fd00::1-fd00::ff", first: "fd00::1", last: "fd00::ff"},
		{in: "fe80::1%eth0", err: "must not have a zone"},
		{in: "", err: "is not an IP address"},
		{in: "10.0.0.1-", err: "is not an IP address"},
		{in: "10.0.0.1-10.0.0.2-10.0.0.3", err: "is not an IP address"},
		{in: "10.0.0.2-10.0.0.1", err: "first address is after the last"},
	}
	for _, tt := range tests {
		first, last, err := ParseRange(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRange(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || first.String() != tt.first || last.String() != tt.last {
			t.Errorf("ParseRange(%q) = %s, %s, %v; want %s, %s", tt.in, first, last, err, tt.first, tt.last)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1-10.0.0.9", "fd00::1-fd00::ff", "::ffff:1.2.3.4", "1-2", "-", "fe80::1%x", "10.0.0.9-10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, err := ParseRange(s)
		if err != nil {
			return
		}
		if !first.IsValid() || !last.IsValid() || first.Is4() != last.Is4() || last.Less(first) || first.Is4In6() {
			t.Fatalf("ParseRange(%q) = %s, %s: accepted an invalid range", s, first, last)
		}
	})
}

// FuzzCompile checks that whatever spec compiles yields a pool whose every
// handed-out address is inside the subnet and is neither the gateway, an
// excluded address, nor a network/broadcast/anycast address.
func FuzzCompile(f *testing.F) {
	f.Add("10.0.0.0/24", "10.0.0.10-10.0.0.20", "10.0.0.15", "10.0.0.1", uint64(1))
	f.Add("fd00::/120", "", "fd00::10-fd00::1f", "fd00::1", uint64(2))
	f.Add("10.0.0.0/31", "", "", "", uint64(3))
	f.Add("10.0.0.0/8", "10.0.0.0-10.255.255.255", "10.0.0.0-10.255.255.254", "", uint64(4))
	f.Fuzz(func(t *testing.T, subnet, ips, exclude, gw string, seed uint64) {
		spec := berthv1.IPPoolSpec{Subnet: subnet}
		if ips != "" {
			spec.IPs = strings.Split(ips, ",")
		}
		if exclude != "" {
			spec.ExcludeIPs = strings.Split(exclude, ",")
		}
		if gw != "" {
			spec.Gateway = &gw
		}
		p, err := Compile(&spec)
		if err != nil {
			return
		}
		prefix := netip.MustParsePrefix(subnet)
		r := rand.New(rand.NewPCG(seed, seed))
		used := NewSet(p.Is4())
		for i := 0; i < 20; i++ {
			a, err := p.Next(used, p.RandomStart(r))
			if errors.Is(err, ErrNoFree) {
				if p.Free(used) != 0 {
					t.Fatalf("ErrNoFree with %d free", p.Free(used))
				}
				return
			}
			if !prefix.Contains(a) || !p.Contains(a) || used.Contains(a) {
				t.Fatalf("handed out %s: outside %s, not in pool, or twice", a, prefix)
			}
			if gw != "" && a.String() == netip.MustParseAddr(gw).String() {
				t.Fatalf("handed out the gateway %s", a)
			}
			for _, e := range spec.ExcludeIPs {
				first, last, err := ParseRange(e)
				if err == nil && !a.Less(first) && !last.Less(a) {
					t.Fatalf("handed out %s, excluded by %q", a, e)
				}
			}
			if a == prefix.Addr() && (p.Is4() && prefix.Bits() <= 30 || !p.Is4() && prefix.Bits() <= 126) {
				t.Fatalf("handed out the network address %s", a)
			}
			used.Add(a)
		}
	})
}
