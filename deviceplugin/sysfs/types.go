// Package sysfs discovers SR-IOV physical functions (PFs) and their virtual
// functions (VFs) in a sysfs tree, with what selectors and health need.
//
// The root is a parameter (/sys on a node), so tests and the demo run on a
// tree they build in a temporary directory (see sysfstest).
package sysfs

// Snapshot is what one scan found, PFs ordered by PCI address and VFs by PF
// then VF index.
type Snapshot struct {
	PFs []PF
	VFs []VF
}

// PF is an SR-IOV capable network PCI device.
type PF struct {
	Address  string // PCI address, 0000:3b:00.0
	Vendor   string // PCI vendor ID, four lower-case hex digits
	DeviceID string // PCI device ID
	Driver   string // kernel driver, "" when unbound
	// NetDev is the PF's network interface, "" when it has none in this
	// network namespace.
	NetDev    string
	NUMANode  int // -1 when the platform reports none
	NumVFs    int // sriov_numvfs
	TotalVFs  int // sriov_totalvfs
	LinkType  string
	OperState string // of NetDev: up, down, lowerlayerdown, unknown...
}

// VF is one virtual function and what selectors, Allocate and health need.
type VF struct {
	Address   string
	Vendor    string
	DeviceID  string
	Driver    string
	Index     int    // the N of the PF's virtfnN link
	PFAddress string // the PF's PCI address
	PFName    string // the PF's netdev, "" when it has none
	// NetDev is the VF's own interface; "" when bound to vfio-pci, or when
	// the SR-IOV CNI has moved it into a pod's network namespace.
	NetDev   string
	NUMANode int
	// LinkType is the ARPHRD name (ether, infiniband) of the VF's interface,
	// or of its PF's when the VF's is not visible: VFs share the PF's link
	// layer, and a VF in use sits in a pod's namespace where sysfs does not
	// show it.
	LinkType string
	// IOMMUGroup is the group number, the name of /dev/vfio/<group>.
	IOMMUGroup string
	// RDMA character devices of the VF, names under /dev/infiniband
	// (uverbs2, umad2, issm2); empty when the VF has no RDMA device.
	RDMADevices []string
	// RDMAName is the VF's RDMA device (mlx5_3), "" when it has none.
	RDMAName string
	Health   Health
}

// RDMA reports whether the VF has an RDMA device.
func (v VF) RDMA() bool { return len(v.RDMADevices) > 0 }

// Health is the state a VF is advertised with.
type Health struct {
	Healthy bool
	// Reason says why a VF is unhealthy, for logs.
	Reason string
}
