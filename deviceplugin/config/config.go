// Package config reads and validates the resource list of berth-sriov-dp.
//
// The format is the one users of the SR-IOV network device plugin already
// write (a "resourceList" of entries with resourceName, resourcePrefix,
// deviceType and selectors), in JSON or YAML. Validation is strict: every
// unknown field, unknown selector and malformed value is an error naming the
// entry (its index and resourceName) and the field, so a typo never turns
// into a resource that silently selects the wrong VFs.
package config

import (
	"fmt"
	"strings"
)

// DeviceType says how the VFs of a resource are handed to containers.
type DeviceType string

const (
	// NetDevice VFs are used through their kernel network driver (the SR-IOV
	// CNI moves the netdev into the pod). A netDevice VF that happens to be
	// bound to vfio-pci still gets its /dev/vfio device specs, as in the
	// SR-IOV network device plugin.
	NetDevice DeviceType = "netDevice"
	// VFIOPCI resources select only VFs bound to vfio-pci (DPDK, VMs) and
	// hand the container /dev/vfio/vfio and the VF's IOMMU group device.
	VFIOPCI DeviceType = "vfio-pci"
)

// VFIODriver is the kernel driver that makes a VF usable from user space.
const VFIODriver = "vfio-pci"

// Link types a linkTypes selector accepts, as the kernel's ARPHRD names.
const (
	LinkTypeEther      = "ether"
	LinkTypeInfiniband = "infiniband"
)

// Config is a validated resource list.
type Config struct {
	Resources []Resource
}

// Resource is one entry of the resource list: a kubelet extended resource
// made of the VFs its selectors pick.
type Resource struct {
	// Index is the entry's position in resourceList, for messages.
	Index int
	// Name is resourceName, Prefix the resourcePrefix (or the default).
	Name   string
	Prefix string
	// DeviceType is netDevice unless the entry says otherwise.
	DeviceType DeviceType
	// ExcludeTopology leaves NUMA information out of the advertised devices,
	// for resources the topology manager must not pin to a NUMA node.
	ExcludeTopology bool
	// Selectors are alternatives: a VF is in the resource when any of them
	// matches it. Within one Selector every field must match.
	Selectors []Selector
}

// FullName is the extended resource name the kubelet knows: prefix/name.
func (r Resource) FullName() string { return r.Prefix + "/" + r.Name }

// Selector picks VFs; an empty field matches every VF.
type Selector struct {
	// Vendors and Devices are PCI IDs as four lower-case hex digits.
	Vendors []string
	Devices []string
	// Drivers are kernel driver names the VF is bound to.
	Drivers []string
	// PFNames are PF netdev names, each optionally limited to VF indexes.
	PFNames []DeviceRef
	// RootDevices are PF PCI addresses, each optionally limited to VF indexes.
	RootDevices []DeviceRef
	// PCIAddresses are VF PCI addresses.
	PCIAddresses []string
	// LinkTypes are ARPHRD names: ether, infiniband.
	LinkTypes []string
	// IsRdma keeps only VFs with an RDMA device, and adds its character
	// devices to the container.
	IsRdma bool
}

// DeviceRef names a PF (by netdev name or PCI address) and, optionally, which
// of its VFs: "ens785f0#0-3,7" is VFs 0, 1, 2, 3 and 7 of ens785f0.
type DeviceRef struct {
	Name string
	// VFs is nil when the reference takes every VF of the PF.
	VFs VFSet
}

// Matches reports whether the VF with index vf of PF name is referenced.
func (d DeviceRef) Matches(name string, vf int) bool {
	return d.Name == name && (d.VFs == nil || d.VFs.Contains(vf))
}

// String gives the reference back in the syntax it was written in.
func (d DeviceRef) String() string {
	if d.VFs == nil {
		return d.Name
	}
	return d.Name + "#" + d.VFs.String()
}

// VFSet is a set of VF indexes as inclusive ranges, in the order written.
type VFSet []VFRange

// VFRange is an inclusive range of VF indexes.
type VFRange struct{ First, Last int }

// Contains reports whether index i is in the set.
func (s VFSet) Contains(i int) bool {
	for _, r := range s {
		if i >= r.First && i <= r.Last {
			return true
		}
	}
	return false
}

func (s VFSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		if r.First == r.Last {
			parts[i] = fmt.Sprint(r.First)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
		}
	}
	return strings.Join(parts, ",")
}
