package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// DefaultRoot is where the kernel mounts sysfs.
const DefaultRoot = "/sys"

// Reader scans one sysfs tree.
type Reader struct {
	root string
}

// NewReader returns a Reader of the tree mounted at root.
func NewReader(root string) *Reader { return &Reader{root: root} }

// Root is the tree the Reader scans.
func (r *Reader) Root() string { return r.root }

func (r *Reader) devices() string { return filepath.Join(r.root, "bus", "pci", "devices") }

// Discover scans every SR-IOV capable network PF and its VFs. A device that
// vanishes during the scan (VFs being destroyed) is left out rather than
// failing the scan: the next scan sees the tree settled.
func (r *Reader) Discover() (*Snapshot, error) {
	entries, err := os.ReadDir(r.devices())
	if err != nil {
		return nil, fmt.Errorf("listing PCI devices in %s: %w", r.root, err)
	}
	snap := &Snapshot{}
	for _, e := range entries {
		pf, vfs, err := r.readPF(e.Name())
		if errors.Is(err, errNotPF) || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		snap.PFs = append(snap.PFs, pf)
		snap.VFs = append(snap.VFs, vfs...)
	}
	return snap, nil
}

var errNotPF = errors.New("not an SR-IOV network PF")

func (r *Reader) readPF(addr string) (PF, []VF, error) {
	dir := filepath.Join(r.devices(), addr)
	total, err := readInt(filepath.Join(dir, "sriov_totalvfs"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && total == 0) {
		return PF{}, nil, errNotPF
	}
	if err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	// Network controllers only (class 0x02xxxx): SR-IOV accelerators and
	// NVMe drives are not this plugin's business.
	class, err := readString(filepath.Join(dir, "class"))
	if err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	if !strings.HasPrefix(class, "0x02") {
		return PF{}, nil, errNotPF
	}
	pf := PF{Address: addr, TotalVFs: total}
	if pf.NumVFs, err = readInt(filepath.Join(dir, "sriov_numvfs")); err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	if err := r.readCommon(dir, &pf.Vendor, &pf.DeviceID, &pf.Driver, &pf.NUMANode); err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	var pfNet netState
	if pf.NetDev, pfNet, err = readNet(dir); err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	pf.LinkType, pf.OperState = pfNet.linkType, pfNet.operState

	links, err := os.ReadDir(dir)
	if err != nil {
		return PF{}, nil, fmt.Errorf("reading PF %s: %w", addr, err)
	}
	var vfs []VF
	for _, l := range links {
		idx, ok := strings.CutPrefix(l.Name(), "virtfn")
		if !ok {
			continue
		}
		index, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, l.Name()))
		if err != nil {
			continue // destroyed while we looked
		}
		vf, err := r.readVF(filepath.Base(target), index, pf)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return PF{}, nil, err
		}
		vfs = append(vfs, vf)
	}
	sort.Slice(vfs, func(i, j int) bool { return vfs[i].Index < vfs[j].Index })
	return pf, vfs, nil
}

func (r *Reader) readVF(addr string, index int, pf PF) (VF, error) {
	dir := filepath.Join(r.devices(), addr)
	vf := VF{Address: addr, Index: index, PFAddress: pf.Address, PFName: pf.NetDev}
	if err := r.readCommon(dir, &vf.Vendor, &vf.DeviceID, &vf.Driver, &vf.NUMANode); err != nil {
		return VF{}, fmt.Errorf("reading VF %s of PF %s: %w", addr, pf.Address, err)
	}
	if vf.NUMANode < 0 {
		vf.NUMANode = pf.NUMANode
	}
	var net netState
	var err error
	if vf.NetDev, net, err = readNet(dir); err != nil {
		return VF{}, fmt.Errorf("reading VF %s of PF %s: %w", addr, pf.Address, err)
	}
	vf.LinkType = net.linkType
	if vf.LinkType == "" {
		vf.LinkType = pf.LinkType
	}
	if g, err := os.Readlink(filepath.Join(dir, "iommu_group")); err == nil {
		vf.IOMMUGroup = filepath.Base(g)
	}
	if vf.RDMAName, vf.RDMADevices, err = rdmaDevices(dir); err != nil {
		return VF{}, fmt.Errorf("reading RDMA devices of VF %s: %w", addr, err)
	}
	vf.Health = health(pf, vf, net)
	return vf, nil
}

// readCommon reads the attributes PFs and VFs share.
func (r *Reader) readCommon(dir string, vendor, device, driver *string, numa *int) error {
	var err error
	if *vendor, err = readID(filepath.Join(dir, "vendor")); err != nil {
		return err
	}
	if *device, err = readID(filepath.Join(dir, "device")); err != nil {
		return err
	}
	if d, err := os.Readlink(filepath.Join(dir, "driver")); err == nil {
		*driver = filepath.Base(d)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	*numa = -1
	if n, err := readInt(filepath.Join(dir, "numa_node")); err == nil {
		*numa = n
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// netState is what sysfs shows of a network interface.
type netState struct {
	linkType  string
	operState string
	adminUp   bool
}

// readNet finds the device's interface in net/ and reads its state. A
// device may show several (a PF with port representors); the first by name
// is the one udev named after the device.
func readNet(dir string) (string, netState, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "net"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return "", netState{}, nil
	}
	if err != nil {
		return "", netState{}, err
	}
	name := entries[0].Name()
	nd := filepath.Join(dir, "net", name)
	var st netState
	if t, err := readInt(filepath.Join(nd, "type")); err == nil {
		st.linkType = ARPHRDName(t)
	}
	if s, err := readString(filepath.Join(nd, "operstate")); err == nil {
		st.operState = s
	}
	if f, err := readString(filepath.Join(nd, "flags")); err == nil {
		if v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 32); err == nil {
			st.adminUp = v&iffUp != 0
		}
	}
	return name, st, nil
}

// iffUp is IFF_UP of <linux/if.h>: the administrator set the interface up.
const iffUp = 0x1

// ARPHRDName names a link type number of net/<if>/type as the kernel's
// ARPHRD_* constants do (the names linkTypes selectors use).
func ARPHRDName(t int) string {
	switch t {
	case 1:
		return "ether"
	case 32:
		return "infiniband"
	case 772:
		return "loopback"
	case 65534:
		return "none"
	}
	return "arphrd" + strconv.Itoa(t)
}

// rdmaDevices names a device's RDMA device (infiniband/mlx5_N) and lists
// its character devices: infiniband_verbs/uverbsN, infiniband_mad/umadN and
// issmN.
func rdmaDevices(dir string) (string, []string, error) {
	ib, err := os.ReadDir(filepath.Join(dir, "infiniband"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ib) == 0) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	var devs []string
	for _, sub := range []string{"infiniband_verbs", "infiniband_mad"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		for _, e := range entries {
			devs = append(devs, e.Name())
		}
	}
	return ib[0].Name(), devs, nil
}

// linkDown are the operstates (RFC 2863, as the kernel reports them) in
// which no traffic passes.
func linkDown(s string) bool {
	return s == "down" || s == "lowerlayerdown" || s == "notpresent"
}

// health decides whether a VF can carry traffic. The PF's link is the main
// signal: every VF shares it. The VF's own interface counts only when the
// administrator set it up: an idle VF on the host is usually down, which
// says nothing of the link, and a VF in a pod is not visible here at all.
func health(pf PF, vf VF, net netState) Health {
	if pf.NetDev != "" && linkDown(pf.OperState) {
		return Health{Reason: fmt.Sprintf("PF %s link is %s", pf.NetDev, pf.OperState)}
	}
	if vf.NetDev != "" && net.adminUp && linkDown(net.operState) {
		return Health{Reason: fmt.Sprintf("VF interface %s link is %s", vf.NetDev, net.operState)}
	}
	return Health{Healthy: true}
}

// readString reads a small sysfs attribute. Not os.ReadFile: a scan is
// almost only syscalls, and open, read, close is three where ReadFile (with
// its fstat, its read to EOF and the poller's bookkeeping) is five or more.
// Attributes this package reads fit in the buffer; sysfs returns them whole
// in one read.
func readString(p string) (string, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	var buf [128]byte
	n, err := syscall.Read(fd, buf[:])
	for err == syscall.EINTR {
		n, err = syscall.Read(fd, buf[:])
	}
	if err != nil {
		return "", &fs.PathError{Op: "read", Path: p, Err: err}
	}
	return strings.TrimSpace(string(buf[:max(n, 0)])), nil
}

func readInt(p string) (int, error) {
	s, err := readString(p)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", p, s)
	}
	return n, nil
}

// readID reads a PCI ID file ("0x8086") as four hex digits.
func readID(p string) (string, error) {
	s, err := readString(p)
	if err != nil {
		return "", err
	}
	return strings.ToLower(strings.TrimPrefix(s, "0x")), nil
}
