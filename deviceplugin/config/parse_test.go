package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const referenceStyle = `{
  "resourceList": [
    {
      "resourceName": "intel_sriov_netdevice",
      "selectors": {"vendors": ["8086"], "devices": ["154c", "0x10ED"], "drivers": ["iavf", "ixgbevf"]}
    },
    {
      "resourceName": "intel_dpdk",
      "resourcePrefix": "intel.com",
      "deviceType": "vfio-pci",
      "selectors": {"pfNames": ["ens785f0#0-3,7", "ens785f1"], "rootDevices": ["0000:3B:00.1#4"]}
    },
    {
      "resourceName": "mlnx_rdma",
      "deviceType": "netdevice",
      "excludeTopology": true,
      "selectors": [
        {"vendors": ["15b3"], "linkTypes": ["infiniband"], "isRdma": true},
        {"pciAddresses": ["0000:5e:00.2"]}
      ]
    }
  ]
}`

func TestParseReferenceFormat(t *testing.T) {
	cfg, err := Parse([]byte(referenceStyle), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	want := []Resource{
		{Index: 0, Name: "intel_sriov_netdevice", Prefix: "berth.io", DeviceType: NetDevice, Selectors: []Selector{{
			Vendors: []string{"8086"}, Devices: []string{"154c", "10ed"}, Drivers: []string{"iavf", "ixgbevf"},
		}}},
		{Index: 1, Name: "intel_dpdk", Prefix: "intel.com", DeviceType: VFIOPCI, Selectors: []Selector{{
			PFNames: []DeviceRef{
				{Name: "ens785f0", VFs: VFSet{{0, 3}, {7, 7}}},
				{Name: "ens785f1"},
			},
			RootDevices: []DeviceRef{{Name: "0000:3b:00.1", VFs: VFSet{{4, 4}}}},
		}}},
		{Index: 2, Name: "mlnx_rdma", Prefix: "berth.io", DeviceType: NetDevice, ExcludeTopology: true, Selectors: []Selector{
			{Vendors: []string{"15b3"}, LinkTypes: []string{"infiniband"}, IsRdma: true},
			{PCIAddresses: []string{"0000:5e:00.2"}},
		}},
	}
	if !reflect.DeepEqual(cfg.Resources, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", cfg.Resources, want)
	}
	if got := cfg.Resources[1].FullName(); got != "intel.com/intel_dpdk" {
		t.Errorf("FullName = %q", got)
	}
}

func TestParseYAMLEqualsJSON(t *testing.T) {
	y := `
resourceList:
- resourceName: intel_sriov_netdevice
  selectors:
    vendors: ["8086"]
    devices: ["154c", "0x10ED"]
    drivers: [iavf, ixgbevf]
`
	fromYAML, err := Parse([]byte(y), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Parse([]byte(referenceStyle), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML.Resources[0], fromJSON.Resources[0]) {
		t.Errorf("YAML gave %+v, JSON %+v", fromYAML.Resources[0], fromJSON.Resources[0])
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"empty", ``, "configuration is empty"},
		{"not an object", `[1]`, "configuration: must be an object"},
		{"garbage", `{"resourceList": [`, "neither JSON nor YAML"},
		{"no resourceList", `{}`, "resourceList: required"},
		{"unknown top field", `{"resourceList": [], "logLevel": 3}`, "logLevel: unknown field (known: resourceList)"},
		{"resourceList not a list", `{"resourceList": {"resourceName": "a"}}`, "resourceList: must be a list"},
		{"entry not an object", `{"resourceList": ["a"]}`, "resourceList[0]: must be an object"},
		{"missing name", `{"resourceList": [{"selectors": {}}]}`, `resourceList[0]: resourceName: required`},
		{"name not a string", `{"resourceList": [{"resourceName": 5, "selectors": {}}]}`, `resourceList[0]: resourceName: must be a string`},
		{"bad name", `{"resourceList": [{"resourceName": "sriov/net", "selectors": {}}]}`, `resourceList[0] (resourceName "sriov/net"): resourceName: "sriov/net": letters, digits`},
		{"long name", `{"resourceList": [{"resourceName": "` + strings.Repeat("a", 64) + `", "selectors": {}}]}`, "longer than 63"},
		{"bad prefix", `{"resourceList": [{"resourceName": "a", "resourcePrefix": "Intel_com", "selectors": {}}]}`, `resourceList[0] (resourceName "a"): resourcePrefix: "Intel_com": a lowercase RFC 1123 subdomain`},
		{"kubernetes.io prefix", `{"resourceList": [{"resourceName": "a", "resourcePrefix": "sriov.kubernetes.io", "selectors": {}}]}`, `resourcePrefix: "sriov.kubernetes.io": the kubernetes.io domain is reserved`},
		{"unknown resource field", `{"resourceList": [{"resourceName": "a", "selector": {}}]}`, `resourceList[0] (resourceName "a"): selector: unknown field (known: resourceName, resourcePrefix, deviceType, excludeTopology, selectors)`},
		{"wrong case", `{"resourceList": [{"resourceName": "a", "Selectors": {}}]}`, `Selectors: unknown field (did you mean selectors?)`},
		{"unsupported resource field", `{"resourceList": [{"resourceName": "a", "additionalInfo": {}, "selectors": {}}]}`, `resourceList[0] (resourceName "a"): additionalInfo: not supported by berth-sriov-dp`},
		{"missing selectors", `{"resourceList": [{"resourceName": "a"}]}`, `resourceList[0] (resourceName "a"): selectors: required`},
		{"selectors not an object", `{"resourceList": [{"resourceName": "a", "selectors": "8086"}]}`, `resourceList[0] (resourceName "a"): selectors: must be an object`},
		{"empty selector list", `{"resourceList": [{"resourceName": "a", "selectors": []}]}`, `selectors: the list is empty`},
		{"unknown device type", `{"resourceList": [{"resourceName": "a", "deviceType": "netdev", "selectors": {}}]}`, `resourceList[0] (resourceName "a"): deviceType: unknown device type "netdev"`},
		{"unsupported device type", `{"resourceList": [{"resourceName": "a", "deviceType": "accelerator", "selectors": {}}]}`, `deviceType: "accelerator" is not supported by berth-sriov-dp`},
		{"excludeTopology not bool", `{"resourceList": [{"resourceName": "a", "excludeTopology": "yes", "selectors": {}}]}`, `excludeTopology: must be true or false`},
		{"unknown selector", `{"resourceList": [{"resourceName": "a", "selectors": {"vendor": ["8086"]}}]}`, `resourceList[0] (resourceName "a"): selectors.vendor: unknown field (known: vendors, devices`},
		{"unknown selector in list", `{"resourceList": [{"resourceName": "a", "selectors": [{}, {"pfName": ["x"]}]}]}`, `resourceList[0] (resourceName "a"): selectors[1].pfName: unknown field`},
		{"unsupported selector", `{"resourceList": [{"resourceName": "a", "selectors": {"needVhostNet": true}}]}`, `selectors.needVhostNet: not supported by berth-sriov-dp`},
		{"vendors not a list", `{"resourceList": [{"resourceName": "a", "selectors": {"vendors": "8086"}}]}`, `selectors.vendors: must be a list of strings`},
		{"empty vendors", `{"resourceList": [{"resourceName": "a", "selectors": {"vendors": []}}]}`, `selectors.vendors: the list is empty`},
		{"bad vendor", `{"resourceList": [{"resourceName": "a", "selectors": {"vendors": ["8086", "intel"]}}]}`, `resourceList[0] (resourceName "a"): selectors.vendors[1]: "intel": not a PCI ID`},
		{"bad device", `{"resourceList": [{"resourceName": "a", "selectors": {"devices": ["154"]}}]}`, `selectors.devices[0]: "154": not a PCI ID`},
		{"bad driver", `{"resourceList": [{"resourceName": "a", "selectors": {"drivers": ["../iavf"]}}]}`, `selectors.drivers[0]: "../iavf": not a kernel driver name`},
		{"bad pf name", `{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["a-very-long-ifname0"]}}]}`, `selectors.pfNames[0]: "a-very-long-ifname0": not a network interface name`},
		{"empty range", `{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#"]}}]}`, `selectors.pfNames[0]: "ens1#": nothing after '#'`},
		{"reversed range", `{"resourceList": [{"resourceName": "dpdk", "selectors": {"pfNames": ["ens1#3-1"]}}]}`, `resourceList[0] (resourceName "dpdk"): selectors.pfNames[0]: "ens1#3-1": VF range 3-1 ends before it starts`},
		{"bad index", `{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#0-x"]}}]}`, `VF index "x" is not a number`},
		{"signed index", `{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#+1"]}}]}`, `VF index "+1" is not a number`},
		{"huge index", `{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#70000"]}}]}`, `VF index 70000 is above 65535`},
		{"bad root device", `{"resourceList": [{"resourceName": "a", "selectors": {"rootDevices": ["86:00.0"]}}]}`, `selectors.rootDevices[0]: "86:00.0": not a PCI address`},
		{"bad pci address", `{"resourceList": [{"resourceName": "a", "selectors": {"pciAddresses": ["0000:86:00.8"]}}]}`, `selectors.pciAddresses[0]: "0000:86:00.8": not a PCI address`},
		{"bad link type", `{"resourceList": [{"resourceName": "a", "selectors": {"linkTypes": ["eth"]}}]}`, `selectors.linkTypes[0]: "eth": unknown link type (ether or infiniband)`},
		{"isRdma not bool", `{"resourceList": [{"resourceName": "a", "selectors": {"isRdma": "true"}}]}`, `selectors.isRdma: must be true or false`},
		{"vfio with other drivers", `{"resourceList": [{"resourceName": "dpdk", "deviceType": "vfio-pci", "selectors": {"drivers": ["iavf"]}}]}`, `resourceList[0] (resourceName "dpdk"): selectors.drivers: deviceType vfio-pci selects only VFs bound to vfio-pci, but drivers lists [iavf]`},
		{"vfio with rdma", `{"resourceList": [{"resourceName": "dpdk", "deviceType": "vfio-pci", "selectors": {"isRdma": true}}]}`, `selectors.isRdma: RDMA needs a kernel network driver`},
		{"duplicate", `{"resourceList": [{"resourceName": "a", "selectors": {}}, {"resourceName": "a", "resourcePrefix": "berth.io", "selectors": {}}]}`, `resourceList[1] (resourceName "a"): resource berth.io/a is already defined by resourceList[0]`},
		{"error in second entry", `{"resourceList": [{"resourceName": "ok", "selectors": {}}, {"resourceName": "net2", "selectors": {"vendors": ["x"]}}]}`, `resourceList[1] (resourceName "net2"): selectors.vendors[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config), "berth.io")
			if err == nil {
				t.Fatalf("accepted %s", tc.config)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseRejectsBadDefaultPrefix(t *testing.T) {
	_, err := Parse([]byte(`{"resourceList": []}`), "Berth")
	if err == nil || !strings.Contains(err.Error(), `default resource prefix "Berth"`) {
		t.Errorf("got %v", err)
	}
}

func TestDeviceRefMatches(t *testing.T) {
	ref, err := ParseDeviceRef("ens1#0-2,5", ifName)
	if err != nil {
		t.Fatal(err)
	}
	for vf, want := range map[int]bool{0: true, 2: true, 3: false, 5: true, 6: false} {
		if got := ref.Matches("ens1", vf); got != want {
			t.Errorf("Matches(ens1, %d) = %v, want %v", vf, got, want)
		}
	}
	if ref.Matches("ens2", 0) {
		t.Error("matched another PF")
	}
	if got := ref.String(); got != "ens1#0-2,5" {
		t.Errorf("String() = %q", got)
	}
	all := DeviceRef{Name: "ens1"}
	if !all.Matches("ens1", 63) {
		t.Error("a reference without '#' takes every VF")
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(`{"resourceList": [{"resourceName": "a"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, "berth.io")
	if err == nil || !strings.HasPrefix(err.Error(), p+": resourceList[0]") {
		t.Errorf("got %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json"), "berth.io"); err == nil {
		t.Error("loaded a missing file")
	}
}

// FuzzParse checks that no input panics, and that an accepted configuration
// is fully valid: every resource named, prefixed and with a selector.
func FuzzParse(f *testing.F) {
	f.Add([]byte(referenceStyle))
	f.Add([]byte(`{"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#0-3,5"]}}]}`))
	f.Add([]byte("resourceList:\n- resourceName: a\n  selectors: [{rootDevices: ['0000:3b:00.0#1']}]\n"))
	f.Add([]byte(`{"resourceList": [{"resourceName": "a", "deviceType": "vfio-pci", "selectors": {"drivers": ["vfio-pci"]}}]}`))
	f.Add([]byte(`{"resourceList": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "berth.io")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		names := map[string]bool{}
		for _, r := range cfg.Resources {
			if r.Name == "" || r.Prefix == "" || len(r.Selectors) == 0 {
				t.Fatalf("accepted an incomplete resource %+v", r)
			}
			if names[r.FullName()] {
				t.Fatalf("accepted %s twice", r.FullName())
			}
			names[r.FullName()] = true
			for _, s := range r.Selectors {
				for _, ref := range append(s.PFNames, s.RootDevices...) {
					for _, rg := range ref.VFs {
						if rg.First > rg.Last || rg.Last > MaxVFIndex {
							t.Fatalf("accepted range %+v", rg)
						}
					}
				}
			}
		}
	})
}

// FuzzParseDeviceRef checks that an accepted reference prints back to a
// string that parses to the same reference.
func FuzzParseDeviceRef(f *testing.F) {
	for _, s := range []string{"ens785f0", "ens785f0#0-3,7", "0000:3b:00.1#4", "a#", "a#1-", "a#-1", "a#3-1,", "a#00,65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseDeviceRef(s, ifName)
		if err != nil {
			return
		}
		again, err := ParseDeviceRef(ref.String(), ifName)
		if err != nil || !reflect.DeepEqual(again, ref) {
			t.Fatalf("%q parsed to %+v, printed %q, parsed again to %+v (%v)", s, ref, ref.String(), again, err)
		}
	})
}
