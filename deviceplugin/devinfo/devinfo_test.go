package devinfo_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/sysfs"
)

var (
	vf0 = sysfs.VF{Address: "0000:3b:02.0", PFAddress: "0000:3b:00.0"}
	vf1 = sysfs.VF{Address: "0000:3b:02.1", PFAddress: "0000:3b:00.0", RDMAName: "mlx5_3", RDMADevices: []string{"uverbs3"}}
)

func read(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestPathFollowsTheSpecification(t *testing.T) {
	got := devinfo.Path("/var/run/k8s.cni.cncf.io/devinfo/dp", "intel.com/sriov_netdevice", "0000:3b:02.1")
	want := "/var/run/k8s.cni.cncf.io/devinfo/dp/intel.com-sriov_netdevice-0000:3b:02.1-device.json"
	if got != want {
		t.Errorf("Path = %s, want %s", got, want)
	}
}

// The files hold the specification's PCI format, are rewritten only when
// what they say changes, follow the VFs that come and go, and are all gone
// after Clear, without touching another resource's.
func TestFilesFollowTheVFs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devinfo", "dp") // created on demand
	const res = "berth.io/fast"
	f := devinfo.New(dir, res)
	if err := f.Sync([]sysfs.VF{vf0, vf1}); err != nil {
		t.Fatal(err)
	}
	p0, p1 := devinfo.Path(dir, res, vf0.Address), devinfo.Path(dir, res, vf1.Address)
	want0 := map[string]any{"type": "pci", "version": "1.1.0", "pci": map[string]any{"pci-address": "0000:3b:02.0", "pf-pci-address": "0000:3b:00.0"}}
	want1 := map[string]any{"type": "pci", "version": "1.1.0", "pci": map[string]any{"pci-address": "0000:3b:02.1", "pf-pci-address": "0000:3b:00.0", "rdma-device": "mlx5_3"}}
	for path, want := range map[string]map[string]any{p0: want0, p1: want1} {
		if got := read(t, path); !jsonEqual(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644: Multus reads it as another user in some installs", path, fi.Mode().Perm())
		}
	}

	other := devinfo.New(dir, "berth.io/other")
	if err := other.Sync([]sysfs.VF{vf0}); err != nil {
		t.Fatal(err)
	}

	before := inode(t, p0)
	changed := vf1
	changed.RDMAName = "mlx5_9"
	if err := f.Sync([]sysfs.VF{vf0, changed}); err != nil {
		t.Fatal(err)
	}
	if inode(t, p0) != before {
		t.Error("an unchanged VF's file was rewritten")
	}
	if got := read(t, p1)["pci"].(map[string]any)["rdma-device"]; got != "mlx5_9" {
		t.Errorf("after the VF changed, rdma-device = %v", got)
	}

	if err := f.Sync([]sysfs.VF{changed}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p0); !os.IsNotExist(err) {
		t.Errorf("the file of a VF no longer selected is left: %v", err)
	}

	if err := f.Clear(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 1 || left[0] != filepath.Base(devinfo.Path(dir, "berth.io/other", vf0.Address)) {
		t.Errorf("after Clear the directory holds %v, want only the other resource's file", left)
	}
}

func TestUnwritableDirectoryNamesResourceAndVF(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := devinfo.New(filepath.Join(blocker, "dp"), "berth.io/fast")
	err := f.Sync([]sysfs.VF{vf0, vf1})
	if err == nil {
		t.Fatal("Sync into a path under a regular file succeeded")
	}
	for _, want := range []string{"berth.io/fast VF 0000:3b:02.0", "berth.io/fast VF 0000:3b:02.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// Nothing was recorded as written: a later Sync tries again.
	if err := f.Clear(); err != nil {
		t.Errorf("Clear after failed writes: %v", err)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
