// Package sysfstest builds fake sysfs trees of SR-IOV NICs, laid out as the
// kernel lays them out: real device directories under devices/pci0000:00,
// symlinks from bus/pci/devices, virtfnN and physfn links between PFs and
// VFs, driver and iommu_group links. Tests, benchmarks and the demo use it;
// it needs no privileges.
package sysfstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ARPHRD link types for PF.LinkType.
const (
	Ether      = 1
	Infiniband = 32
)

// PF describes a physical function to create, with its VFs.
type PF struct {
	// Address is the PF's PCI address. VFs are placed on buses from 0x80 up,
	// one bus per 256 VFs; AddPF reports an address taken twice.
	Address  string
	Name     string // PF netdev, "" for none
	Vendor   string // "8086"
	DeviceID string // PF device ID
	Driver   string // PF driver, e.g. ice, mlx5_core
	NUMANode int
	LinkType int // ARPHRD number; 0 means Ether
	// VFs to create: VFDeviceID and VFDriver apply to all, VFDrivers
	// overrides per index (e.g. some bound to vfio-pci).
	NumVFs     int
	TotalVFs   int // 0 means NumVFs
	VFDeviceID string
	VFDriver   string
	VFDrivers  map[int]string
	// RDMA gives every VF bound to a kernel driver an RDMA device.
	RDMA bool
}

// Tree is a fake sysfs rooted at Root.
type Tree struct {
	Root string

	nextBus   int
	nextGroup int
	nextRDMA  int
	netDirs   map[string]string // interface name -> its net/<name> dir
	vfs       map[string][]string
}

// New creates an empty tree under root (which may exist).
func New(root string) (*Tree, error) {
	t := &Tree{Root: root, nextBus: 0x80, nextGroup: 100, netDirs: map[string]string{}, vfs: map[string][]string{}}
	for _, d := range []string{"bus/pci/devices", "bus/pci/drivers", "devices/pci0000:00", "kernel/iommu_groups"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating fake sysfs: %w", err)
		}
	}
	return t, nil
}

func (t *Tree) devDir(addr string) string {
	return filepath.Join(t.Root, "devices", "pci0000:00", addr)
}

// AddPF creates a PF and its VFs and returns the VFs' PCI addresses in
// index order. VF netdevs are named <pf>v<index>.
func (t *Tree) AddPF(pf PF) ([]string, error) {
	if pf.LinkType == 0 {
		pf.LinkType = Ether
	}
	total := pf.TotalVFs
	if total == 0 {
		total = pf.NumVFs
	}
	if err := t.addDevice(pf.Address, pf.Vendor, pf.DeviceID, pf.Driver, pf.NUMANode); err != nil {
		return nil, err
	}
	dir := t.devDir(pf.Address)
	files := map[string]string{
		"class":          "0x020000",
		"sriov_totalvfs": strconv.Itoa(total),
		"sriov_numvfs":   strconv.Itoa(pf.NumVFs),
	}
	if err := writeFiles(dir, files); err != nil {
		return nil, err
	}
	if pf.Name != "" {
		if err := t.addNet(dir, pf.Name, pf.LinkType, "up", true); err != nil {
			return nil, err
		}
	}
	domain, _, _ := strings.Cut(pf.Address, ":")
	var addrs []string
	for i := range pf.NumVFs {
		// 256 functions per bus: a PF with more VFs spills onto the next.
		if i > 0 && i%256 == 0 {
			t.nextBus++
		}
		addr := fmt.Sprintf("%s:%02x:%02x.%x", domain, t.nextBus, (i%256)/8, i%8)
		driver := pf.VFDriver
		if d, ok := pf.VFDrivers[i]; ok {
			driver = d
		}
		if err := t.addVF(pf, addr, i, driver); err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	t.nextBus++
	t.vfs[pf.Address] = addrs
	return addrs, nil
}

func (t *Tree) addVF(pf PF, addr string, index int, driver string) error {
	if err := t.addDevice(addr, pf.Vendor, pf.VFDeviceID, driver, pf.NUMANode); err != nil {
		return err
	}
	dir := t.devDir(addr)
	if err := writeFiles(dir, map[string]string{"class": "0x020000"}); err != nil {
		return err
	}
	if err := os.Symlink("../"+addr, filepath.Join(t.devDir(pf.Address), "virtfn"+strconv.Itoa(index))); err != nil {
		return fmt.Errorf("linking VF %d of %s: %w", index, pf.Address, err)
	}
	if err := os.Symlink("../"+pf.Address, filepath.Join(dir, "physfn")); err != nil {
		return fmt.Errorf("linking physfn of %s: %w", addr, err)
	}
	group := strconv.Itoa(t.nextGroup)
	t.nextGroup++
	if err := os.MkdirAll(filepath.Join(t.Root, "kernel", "iommu_groups", group, "devices"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink("../../../kernel/iommu_groups/"+group, filepath.Join(dir, "iommu_group")); err != nil {
		return err
	}
	if driver == "vfio-pci" || driver == "" {
		return nil // no netdev, no RDMA device
	}
	// An idle VF on the host: administratively down, as after creation.
	if pf.Name != "" {
		if err := t.addNet(dir, fmt.Sprintf("%sv%d", pf.Name, index), pf.LinkType, "down", false); err != nil {
			return err
		}
	}
	if pf.RDMA {
		n := strconv.Itoa(t.nextRDMA)
		t.nextRDMA++
		for _, d := range []string{"infiniband/mlx5_" + n, "infiniband_verbs/uverbs" + n, "infiniband_mad/umad" + n, "infiniband_mad/issm" + n} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Tree) addDevice(addr, vendor, device, driver string, numa int) error {
	dir := t.devDir(addr)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("PCI device %s already exists in the fake tree", addr)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFiles(dir, map[string]string{
		"vendor":    "0x" + vendor,
		"device":    "0x" + device,
		"numa_node": strconv.Itoa(numa),
	}); err != nil {
		return err
	}
	if err := os.Symlink("../../../devices/pci0000:00/"+addr, filepath.Join(t.Root, "bus", "pci", "devices", addr)); err != nil {
		return fmt.Errorf("linking %s into bus/pci/devices: %w", addr, err)
	}
	return t.bind(addr, driver)
}

// bind points the device's driver link at driver ("" unbinds).
func (t *Tree) bind(addr, driver string) error {
	link := filepath.Join(t.devDir(addr), "driver")
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if driver == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(t.Root, "bus", "pci", "drivers", driver), 0o755); err != nil {
		return err
	}
	return os.Symlink("../../../bus/pci/drivers/"+driver, link)
}

func (t *Tree) addNet(devDir, name string, linkType int, oper string, adminUp bool) error {
	nd := filepath.Join(devDir, "net", name)
	if err := os.MkdirAll(nd, 0o755); err != nil {
		return err
	}
	t.netDirs[name] = nd
	if err := writeFiles(nd, map[string]string{"type": strconv.Itoa(linkType)}); err != nil {
		return err
	}
	return t.SetLink(name, oper, adminUp)
}

// SetLink sets an interface's operstate and IFF_UP flag, as a cable pulled
// (operstate down, still admin up) or `ip link set down` would.
func (t *Tree) SetLink(ifname, operstate string, adminUp bool) error {
	nd, ok := t.netDirs[ifname]
	if !ok {
		return fmt.Errorf("no interface %s in the fake tree", ifname)
	}
	flags := "0x1002"
	if adminUp {
		flags = "0x1003"
	}
	return writeFiles(nd, map[string]string{"operstate": operstate, "flags": flags})
}

// AddDevice creates a PCI device that is not an SR-IOV PF: a plain NIC
// (class 0x020000) or, with totalVFs > 0, an SR-IOV device of another class
// (an NVMe drive is 0x010802) that the plugin must leave alone.
func (t *Tree) AddDevice(addr, class, vendor, device, driver string, totalVFs int) error {
	if err := t.addDevice(addr, vendor, device, driver, -1); err != nil {
		return err
	}
	files := map[string]string{"class": class}
	if totalVFs > 0 {
		files["sriov_totalvfs"] = strconv.Itoa(totalVFs)
		files["sriov_numvfs"] = "0"
	}
	return writeFiles(t.devDir(addr), files)
}

// RemoveVF deletes a VF as the kernel does when sriov_numvfs shrinks or the
// device is hot-unplugged: its directory, bus link and the PF's virtfn link.
func (t *Tree) RemoveVF(pfAddr string, index int) error {
	addrs := t.vfs[pfAddr]
	if index < 0 || index >= len(addrs) {
		return fmt.Errorf("PF %s has no VF %d in the fake tree", pfAddr, index)
	}
	addr := addrs[index]
	for _, p := range []string{
		filepath.Join(t.devDir(pfAddr), "virtfn"+strconv.Itoa(index)),
		filepath.Join(t.Root, "bus", "pci", "devices", addr),
	} {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.RemoveAll(t.devDir(addr))
}

// Bind rebinds a device to another driver (vfio-pci, iavf...).
func (t *Tree) Bind(addr, driver string) error { return t.bind(addr, driver) }

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing fake sysfs file: %w", err)
		}
	}
	return nil
}

// Standard builds the tree the tests and the demo share: two NUMA nodes,
// an Intel E810 (8086) with two PFs and a Mellanox ConnectX-5 (15b3) with one.
//
//	0000:3b:00.0 ens785f0  ice        NUMA 0  VFs 0-3 iavf, 4-5 vfio-pci  (154c)
//	0000:3b:00.1 ens785f1  ice        NUMA 0  VFs 0-3 iavf                (154c)
//	0000:5e:00.0 ens801f0  mlx5_core  NUMA 1  VFs 0-3 mlx5_core, RDMA     (1018)
//	0000:af:00.0 ens817f0  ice        NUMA 1  VFs 0-1 iavf                (154c)
//
// VFs get addresses 0000:80:00.x, 0000:81:00.x, 0000:82:00.x and
// 0000:83:00.x in that order. A plain igb NIC (0000:01:00.0) and an SR-IOV
// NVMe drive (0000:d8:00.0) are there too, to be ignored.
func Standard(root string) (*Tree, error) {
	t, err := New(root)
	if err != nil {
		return nil, err
	}
	for _, pf := range StandardPFs() {
		if _, err := t.AddPF(pf); err != nil {
			return nil, err
		}
	}
	// Devices the plugin must not advertise: the management NIC, which has
	// no SR-IOV, and an SR-IOV NVMe drive.
	if err := t.AddDevice("0000:01:00.0", "0x020000", "8086", "1521", "igb", 0); err != nil {
		return nil, err
	}
	if err := t.AddDevice("0000:d8:00.0", "0x010802", "144d", "a824", "nvme", 32); err != nil {
		return nil, err
	}
	return t, nil
}

// StandardPFs are the PFs of Standard.
func StandardPFs() []PF {
	return []PF{
		{Address: "0000:3b:00.0", Name: "ens785f0", Vendor: "8086", DeviceID: "1593", Driver: "ice", NUMANode: 0,
			NumVFs: 6, TotalVFs: 64, VFDeviceID: "154c", VFDriver: "iavf", VFDrivers: map[int]string{4: "vfio-pci", 5: "vfio-pci"}},
		{Address: "0000:3b:00.1", Name: "ens785f1", Vendor: "8086", DeviceID: "1593", Driver: "ice", NUMANode: 0,
			NumVFs: 4, TotalVFs: 64, VFDeviceID: "154c", VFDriver: "iavf"},
		{Address: "0000:5e:00.0", Name: "ens801f0", Vendor: "15b3", DeviceID: "1017", Driver: "mlx5_core", NUMANode: 1,
			NumVFs: 4, TotalVFs: 8, VFDeviceID: "1018", VFDriver: "mlx5_core", RDMA: true},
		{Address: "0000:af:00.0", Name: "ens817f0", Vendor: "8086", DeviceID: "1593", Driver: "ice", NUMANode: 1,
			NumVFs: 2, TotalVFs: 64, VFDeviceID: "154c", VFDriver: "iavf"},
	}
}
