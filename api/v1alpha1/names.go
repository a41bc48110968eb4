package v1alpha1

import (
	"net/netip"
	"strings"
)

// AllocationName is the name of the IPAllocation that locks addr in pool. It
// must agree with the CEL rule on IPAllocation, which recomputes it with
// string(ip()): the canonical text of the address, colons as dashes.
func AllocationName(pool string, addr netip.Addr) string {
	return pool + "." + strings.ReplaceAll(addr.Unmap().String(), ":", "-")
}
