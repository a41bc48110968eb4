package v1alpha1

import (
	"net/netip"
	"strings"
)

// AllocationName is the name of the IPAllocation that locks addr in pool:
// "<pool>.<address>" with the canonical text of the address and an IPv6
// address's colons written as dashes. A label may not start or end with a
// dash, so an IPv6 text starting or ending with "::" gets a "0" there
// ("::1" -> "0--1", "fd00:6:0:0:1::" -> "fd00-6-0-0-1--0"); a canonical text
// never starts with "0::" or ends with "::0" (that zero would belong to the
// compressed run), so no two addresses share a name. The CEL rule on
// IPAllocation recomputes exactly this.
func AllocationName(pool string, addr netip.Addr) string {
	s := addr.Unmap().String()
	if strings.HasPrefix(s, ":") {
		s = "0" + s
	}
	if strings.HasSuffix(s, ":") {
		s += "0"
	}
	return pool + "." + strings.ReplaceAll(s, ":", "-")
}
