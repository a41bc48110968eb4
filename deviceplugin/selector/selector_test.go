package selector_test

import (
	"reflect"
	"testing"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/selector"
	"github.com/berth-io/berth/deviceplugin/sysfs"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

// The Standard tree's VFs (see sysfstest.Standard):
//
//	0000:80:00.0-3 ens785f0 VFs 0-3 iavf, 0000:80:00.4-5 VFs 4-5 vfio-pci (8086:154c, NUMA 0)
//	0000:81:00.0-3 ens785f1 VFs 0-3 iavf                                  (8086:154c, NUMA 0)
//	0000:82:00.0-3 ens801f0 VFs 0-3 mlx5_core with RDMA                   (15b3:1018, NUMA 1)
//	0000:83:00.0-1 ens817f0 VFs 0-1 iavf                                  (8086:154c, NUMA 1)
func TestSelect(t *testing.T) {
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := sysfs.NewReader(tree.Root).Discover()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		config string
		want   []string
	}{
		{"every VF", `{}`, []string{
			"0000:80:00.0", "0000:80:00.1", "0000:80:00.2", "0000:80:00.3", "0000:80:00.4", "0000:80:00.5",
			"0000:81:00.0", "0000:81:00.1", "0000:81:00.2", "0000:81:00.3",
			"0000:82:00.0", "0000:82:00.1", "0000:82:00.2", "0000:82:00.3",
			"0000:83:00.0", "0000:83:00.1"}},
		{"vendor and driver", `{"vendors": ["8086"], "drivers": ["iavf"]}`, []string{
			"0000:80:00.0", "0000:80:00.1", "0000:80:00.2", "0000:80:00.3",
			"0000:81:00.0", "0000:81:00.1", "0000:81:00.2", "0000:81:00.3",
			"0000:83:00.0", "0000:83:00.1"}},
		{"mellanox device", `{"vendors": ["15b3"], "devices": ["1018"]}`, []string{"0000:82:00.0", "0000:82:00.1", "0000:82:00.2", "0000:82:00.3"}},
		{"device of another vendor", `{"vendors": ["15b3"], "devices": ["154c"]}`, nil},
		{"pf name with range", `{"pfNames": ["ens785f0#1-2", "ens817f0#1"]}`, []string{"0000:80:00.1", "0000:80:00.2", "0000:83:00.1"}},
		{"whole pf", `{"pfNames": ["ens785f1"]}`, []string{"0000:81:00.0", "0000:81:00.1", "0000:81:00.2", "0000:81:00.3"}},
		{"root device with list", `{"rootDevices": ["0000:5e:00.0#0,3"]}`, []string{"0000:82:00.0", "0000:82:00.3"}},
		{"pci addresses", `{"pciAddresses": ["0000:83:00.1", "0000:80:00.5"]}`, []string{"0000:80:00.5", "0000:83:00.1"}},
		{"rdma", `{"isRdma": true}`, []string{"0000:82:00.0", "0000:82:00.1", "0000:82:00.2", "0000:82:00.3"}},
		{"link type", `{"linkTypes": ["infiniband"]}`, nil},
		{"unknown pf", `{"pfNames": ["ens9"]}`, nil},
		{"alternatives are a union, each VF once", `[{"pfNames": ["ens817f0"]}, {"pciAddresses": ["0000:83:00.1", "0000:80:00.0"]}]`,
			[]string{"0000:80:00.0", "0000:83:00.0", "0000:83:00.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`{"resourceList": [{"resourceName": "r", "selectors": `+tc.config+`}]}`), "berth.io")
			if err != nil {
				t.Fatal(err)
			}
			got := addresses(selector.ForResource(cfg.Resources[0]).Select(snap.VFs))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("selected %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestSelectVFIODeviceType(t *testing.T) {
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := sysfs.NewReader(tree.Root).Discover()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`{"resourceList": [{"resourceName": "dpdk", "deviceType": "vfio-pci", "selectors": {"vendors": ["8086"]}}]}`), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	got := addresses(selector.ForResource(cfg.Resources[0]).Select(snap.VFs))
	if want := []string{"0000:80:00.4", "0000:80:00.5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("vfio-pci resource selected %v, want %v", got, want)
	}
}

func addresses(vfs []sysfs.VF) []string {
	var out []string
	for _, vf := range vfs {
		out = append(out, vf.Address)
	}
	return out
}
