package v1alpha1

import (
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestAllocationName(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"10.6.212.101", "p.10.6.212.101"},
		{"fd00:6::101", "p.fd00-6--101"},
		{"::1", "p.0--1"},
		{"fd00:6:0:0:1::", "p.fd00-6-0-0-1--0"},
		{"fd00:70::", "p.fd00-70--0"},
		{"::", "p.0--0"},
		{"::ffff:10.0.0.1", "p.10.0.0.1"}, // IPv4-mapped locks the IPv4 address
	}
	for _, tt := range tests {
		got := AllocationName("p", netip.MustParseAddr(tt.addr))
		if got != tt.want {
			t.Errorf("AllocationName(p, %s) = %q, want %q", tt.addr, got, tt.want)
		}
		if msgs := validation.IsDNS1123Subdomain(got); len(msgs) > 0 {
			t.Errorf("AllocationName(p, %s) = %q is not a valid object name: %v", tt.addr, got, msgs)
		}
	}
}

// FuzzAllocationName: every IPv6 address gets a valid object name, and two
// different addresses never share one (the name is the lock).
func FuzzAllocationName(f *testing.F) {
	f.Add([]byte{0xfd, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) != 16 || len(b) != 16 {
			return
		}
		x, y := netip.AddrFrom16([16]byte(a)), netip.AddrFrom16([16]byte(b))
		if x.Is4In6() || y.Is4In6() {
			return // IPv4-mapped addresses are locked as their IPv4 address
		}
		nx, ny := AllocationName("pool-v6", x), AllocationName("pool-v6", y)
		if msgs := validation.IsDNS1123Subdomain(nx); len(msgs) > 0 {
			t.Fatalf("%s: name %q invalid: %v", x, nx, msgs)
		}
		if (nx == ny) != (x == y) {
			t.Fatalf("%s and %s: names %q and %q", x, y, nx, ny)
		}
	})
}
