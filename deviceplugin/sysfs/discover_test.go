package sysfs_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-io/berth/deviceplugin/sysfs"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

func standard(t testing.TB) (*sysfstest.Tree, *sysfs.Reader) {
	t.Helper()
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return tree, sysfs.NewReader(tree.Root)
}

func byAddress(snap *sysfs.Snapshot) map[string]sysfs.VF {
	m := map[string]sysfs.VF{}
	for _, vf := range snap.VFs {
		m[vf.Address] = vf
	}
	return m
}

func TestDiscoverStandardTree(t *testing.T) {
	_, r := standard(t)
	snap, err := r.Discover()
	if err != nil {
		t.Fatal(err)
	}
	wantPFs := []sysfs.PF{
		{Address: "0000:3b:00.0", Vendor: "8086", DeviceID: "1593", Driver: "ice", NetDev: "ens785f0", NUMANode: 0, NumVFs: 6, TotalVFs: 64, LinkType: "ether", OperState: "up"},
		{Address: "0000:3b:00.1", Vendor: "8086", DeviceID: "1593", Driver: "ice", NetDev: "ens785f1", NUMANode: 0, NumVFs: 4, TotalVFs: 64, LinkType: "ether", OperState: "up"},
		{Address: "0000:5e:00.0", Vendor: "15b3", DeviceID: "1017", Driver: "mlx5_core", NetDev: "ens801f0", NUMANode: 1, NumVFs: 4, TotalVFs: 8, LinkType: "ether", OperState: "up"},
		{Address: "0000:af:00.0", Vendor: "8086", DeviceID: "1593", Driver: "ice", NetDev: "ens817f0", NUMANode: 1, NumVFs: 2, TotalVFs: 64, LinkType: "ether", OperState: "up"},
	}
	if !reflect.DeepEqual(snap.PFs, wantPFs) {
		t.Errorf("PFs:\n%+v\nwant\n%+v", snap.PFs, wantPFs)
	}
	if len(snap.VFs) != 16 {
		t.Fatalf("found %d VFs, want 16 (the igb NIC and the NVMe drive are not SR-IOV network PFs)", len(snap.VFs))
	}
	vfs := byAddress(snap)
	for _, tc := range []sysfs.VF{
		{Address: "0000:80:00.0", Vendor: "8086", DeviceID: "154c", Driver: "iavf", Index: 0, PFAddress: "0000:3b:00.0", PFName: "ens785f0",
			NetDev: "ens785f0v0", NUMANode: 0, LinkType: "ether", IOMMUGroup: "100", Health: sysfs.Health{Healthy: true}},
		{Address: "0000:80:00.4", Vendor: "8086", DeviceID: "154c", Driver: "vfio-pci", Index: 4, PFAddress: "0000:3b:00.0", PFName: "ens785f0",
			NUMANode: 0, LinkType: "ether", IOMMUGroup: "104", Health: sysfs.Health{Healthy: true}},
		{Address: "0000:82:00.2", Vendor: "15b3", DeviceID: "1018", Driver: "mlx5_core", Index: 2, PFAddress: "0000:5e:00.0", PFName: "ens801f0",
			NetDev: "ens801f0v2", NUMANode: 1, LinkType: "ether", IOMMUGroup: "112", RDMADevices: []string{"uverbs2", "issm2", "umad2"}, RDMAName: "mlx5_2",
			Health: sysfs.Health{Healthy: true}},
	} {
		if got := vfs[tc.Address]; !reflect.DeepEqual(got, tc) {
			t.Errorf("VF %s:\n%+v\nwant\n%+v", tc.Address, got, tc)
		}
	}
	// Ordered by PF, then VF index.
	for i := 1; i < len(snap.VFs); i++ {
		a, b := snap.VFs[i-1], snap.VFs[i]
		if a.PFAddress > b.PFAddress || (a.PFAddress == b.PFAddress && a.Index >= b.Index) {
			t.Errorf("VF %s (%s #%d) listed before %s (%s #%d)", a.Address, a.PFAddress, a.Index, b.Address, b.PFAddress, b.Index)
		}
	}
}

func TestDiscoverHealth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*sysfstest.Tree) error
		vf      string
		healthy bool
		reason  string
	}{
		{"idle VF, admin down", func(*sysfstest.Tree) error { return nil }, "0000:80:00.0", true, ""},
		{"VF up with carrier", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f0v0", "up", true) }, "0000:80:00.0", true, ""},
		{"VF up without carrier", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f0v0", "down", true) }, "0000:80:00.0", false, "VF interface ens785f0v0 link is down"},
		{"PF cable pulled", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f0", "down", true) }, "0000:80:00.1", false, "PF ens785f0 link is down"},
		{"PF down hits vfio VF too", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f0", "lowerlayerdown", true) }, "0000:80:00.4", false, "PF ens785f0 link is lowerlayerdown"},
		{"PF operstate unknown", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f0", "unknown", true) }, "0000:80:00.1", true, ""},
		{"other PF down", func(tr *sysfstest.Tree) error { return tr.SetLink("ens785f1", "down", true) }, "0000:80:00.1", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree, r := standard(t)
			if err := tc.change(tree); err != nil {
				t.Fatal(err)
			}
			snap, err := r.Discover()
			if err != nil {
				t.Fatal(err)
			}
			got := byAddress(snap)[tc.vf].Health
			if got.Healthy != tc.healthy || got.Reason != tc.reason {
				t.Errorf("health of %s = %+v, want healthy=%v reason %q", tc.vf, got, tc.healthy, tc.reason)
			}
		})
	}
}

func TestDiscoverFollowsTreeChanges(t *testing.T) {
	tree, r := standard(t)
	if err := tree.RemoveVF("0000:3b:00.1", 2); err != nil {
		t.Fatal(err)
	}
	if err := tree.Bind("0000:80:00.0", "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	snap, err := r.Discover()
	if err != nil {
		t.Fatal(err)
	}
	vfs := byAddress(snap)
	if _, ok := vfs["0000:81:00.2"]; ok {
		t.Error("a removed VF is still discovered")
	}
	if len(snap.VFs) != 15 {
		t.Errorf("found %d VFs, want 15", len(snap.VFs))
	}
	if d := vfs["0000:80:00.0"].Driver; d != "vfio-pci" {
		t.Errorf("driver after rebinding = %q", d)
	}
}

func TestDiscoverInfiniband(t *testing.T) {
	tree, err := sysfstest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.AddPF(sysfstest.PF{Address: "0000:12:00.0", Name: "ibp18s0", Vendor: "15b3", DeviceID: "101b", Driver: "mlx5_core",
		NUMANode: -1, LinkType: sysfstest.Infiniband, NumVFs: 2, VFDeviceID: "101c", VFDriver: "mlx5_core", RDMA: true,
		VFDrivers: map[int]string{1: "vfio-pci"}}); err != nil {
		t.Fatal(err)
	}
	snap, err := sysfs.NewReader(tree.Root).Discover()
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range snap.VFs {
		// VF 1 has no netdev: its link type comes from the PF.
		if vf.LinkType != "infiniband" || vf.NUMANode != -1 {
			t.Errorf("VF %s: link type %q NUMA %d, want infiniband and -1", vf.Address, vf.LinkType, vf.NUMANode)
		}
	}
	if snap.VFs[1].NetDev != "" || snap.VFs[1].RDMA() {
		t.Errorf("a vfio-pci VF shows netdev %q, RDMA %v", snap.VFs[1].NetDev, snap.VFs[1].RDMA())
	}
}

func TestDiscoverErrors(t *testing.T) {
	_, err := sysfs.NewReader(t.TempDir()).Discover()
	if err == nil || !strings.Contains(err.Error(), "listing PCI devices") {
		t.Errorf("a tree without bus/pci/devices gave %v", err)
	}
}

func TestARPHRDName(t *testing.T) {
	for n, want := range map[int]string{1: "ether", 32: "infiniband", 772: "loopback", 65534: "none", 24: "arphrd24"} {
		if got := sysfs.ARPHRDName(n); got != want {
			t.Errorf("ARPHRDName(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkDiscover scans trees of growing size: the cost of one health poll.
func BenchmarkDiscover(b *testing.B) {
	for _, vfsPerPF := range []int{8, 64, 256} {
		const pfs = 4
		b.Run(fmt.Sprintf("vfs=%d", pfs*vfsPerPF), func(b *testing.B) {
			tree, err := sysfstest.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			for i := range pfs {
				if _, err := tree.AddPF(sysfstest.PF{Address: fmt.Sprintf("0000:%02x:00.0", 0x10+i), Name: fmt.Sprintf("ens%df0", i),
					Vendor: "8086", DeviceID: "1593", Driver: "ice", NUMANode: i % 2, NumVFs: vfsPerPF, VFDeviceID: "154c", VFDriver: "iavf"}); err != nil {
					b.Fatal(err)
				}
			}
			r := sysfs.NewReader(tree.Root)
			b.ReportAllocs()
			for b.Loop() {
				snap, err := r.Discover()
				if err != nil || len(snap.VFs) != pfs*vfsPerPF {
					b.Fatalf("discover: %v", err)
				}
			}
		})
	}
}
