// Package selector picks the VFs of a resource from a sysfs snapshot.
//
// Each selector field is a small Filter; a config.Selector is the chain of
// its filters (all must match) and a resource is the union of its
// selectors. Fields are validated by package config, so building filters
// cannot fail here.
package selector

import (
	"slices"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/sysfs"
)

// Filter keeps the VFs it matches, in their order.
type Filter interface {
	Filter(in []sysfs.VF) []sysfs.VF
}

// match is the shape every field filter has: a predicate on one VF.
type match func(sysfs.VF) bool

func (m match) Filter(in []sysfs.VF) []sysfs.VF {
	out := make([]sysfs.VF, 0, len(in))
	for _, vf := range in {
		if m(vf) {
			out = append(out, vf)
		}
	}
	return out
}

// Vendors keeps VFs with one of the PCI vendor IDs.
func Vendors(ids []string) Filter {
	return match(func(v sysfs.VF) bool { return slices.Contains(ids, v.Vendor) })
}

// Devices keeps VFs with one of the PCI device IDs.
func Devices(ids []string) Filter {
	return match(func(v sysfs.VF) bool { return slices.Contains(ids, v.DeviceID) })
}

// Drivers keeps VFs bound to one of the drivers.
func Drivers(names []string) Filter {
	return match(func(v sysfs.VF) bool { return slices.Contains(names, v.Driver) })
}

// PCIAddresses keeps the VFs at the addresses.
func PCIAddresses(addrs []string) Filter {
	return match(func(v sysfs.VF) bool { return slices.Contains(addrs, v.Address) })
}

// LinkTypes keeps VFs whose link type is one of types.
func LinkTypes(types []string) Filter {
	return match(func(v sysfs.VF) bool { return slices.Contains(types, v.LinkType) })
}

// PFNames keeps VFs of the named PFs, within each reference's VF indexes.
func PFNames(refs []config.DeviceRef) Filter {
	return match(func(v sysfs.VF) bool {
		return v.PFName != "" && slices.ContainsFunc(refs, func(r config.DeviceRef) bool { return r.Matches(v.PFName, v.Index) })
	})
}

// RootDevices keeps VFs of the PFs at the PCI addresses, within each
// reference's VF indexes.
func RootDevices(refs []config.DeviceRef) Filter {
	return match(func(v sysfs.VF) bool {
		return slices.ContainsFunc(refs, func(r config.DeviceRef) bool { return r.Matches(v.PFAddress, v.Index) })
	})
}

// RDMA keeps VFs that have an RDMA device.
func RDMA() Filter { return match(sysfs.VF.RDMA) }

// Chain applies filters in turn: a VF must pass them all.
type Chain []Filter

// Filter implements Filter.
func (c Chain) Filter(in []sysfs.VF) []sysfs.VF {
	for _, f := range c {
		in = f.Filter(in)
	}
	return in
}

// ForSelector builds the chain of one selector object of a resource.
func ForSelector(dt config.DeviceType, s config.Selector) Chain {
	var c Chain
	if dt == config.VFIOPCI {
		c = append(c, Drivers([]string{config.VFIODriver}))
	}
	if len(s.Vendors) > 0 {
		c = append(c, Vendors(s.Vendors))
	}
	if len(s.Devices) > 0 {
		c = append(c, Devices(s.Devices))
	}
	if len(s.Drivers) > 0 {
		c = append(c, Drivers(s.Drivers))
	}
	if len(s.PCIAddresses) > 0 {
		c = append(c, PCIAddresses(s.PCIAddresses))
	}
	if len(s.PFNames) > 0 {
		c = append(c, PFNames(s.PFNames))
	}
	if len(s.RootDevices) > 0 {
		c = append(c, RootDevices(s.RootDevices))
	}
	if len(s.LinkTypes) > 0 {
		c = append(c, LinkTypes(s.LinkTypes))
	}
	if s.IsRdma {
		c = append(c, RDMA())
	}
	return c
}

// Resource selects the VFs of one configured resource.
type Resource struct {
	chains []Chain
}

// ForResource builds the selection of r: the union of its selectors.
func ForResource(r config.Resource) *Resource {
	sel := &Resource{}
	for _, s := range r.Selectors {
		sel.chains = append(sel.chains, ForSelector(r.DeviceType, s))
	}
	return sel
}

// Select returns the VFs of the resource, in the snapshot's order, each
// once even when several selectors match it.
func (r *Resource) Select(vfs []sysfs.VF) []sysfs.VF {
	if len(r.chains) == 1 {
		return r.chains[0].Filter(vfs)
	}
	picked := map[string]bool{}
	for _, c := range r.chains {
		for _, vf := range c.Filter(vfs) {
			picked[vf.Address] = true
		}
	}
	out := make([]sysfs.VF, 0, len(picked))
	for _, vf := range vfs {
		if picked[vf.Address] {
			out = append(out, vf)
		}
	}
	return out
}
