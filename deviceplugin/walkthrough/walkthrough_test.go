package walkthrough

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

const cfg = `{"resourceList": [
  {"resourceName": "sriov_netdevice", "selectors": {"vendors": ["8086"], "drivers": ["iavf"]}},
  {"resourceName": "sriov_dpdk", "deviceType": "vfio-pci", "selectors": {"vendors": ["8086"]}},
  {"resourceName": "mlnx_rdma", "selectors": {"vendors": ["15b3"], "isRdma": true}}
]}`

func TestRunNarratesThePlugin(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Config: []byte(cfg), DefaultPrefix: "berth.io", Out: &out}); err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"0000:3b:00.0  ens785f0  ice        0     8086:154c         2 vfio-pci, 4 iavf",
		"berth.io/sriov_netdevice  10       10       8       2       0000:80:00.0-3 0000:81:00.0-3 0000:83:00.0-1",
		"berth.io/mlnx_rdma        4        4        0       4       0000:82:00.0-3",
		// Two VFs on NUMA 0, from two PFs.
		"berth.io/sriov_netdevice: preferred 0000:80:00.0 0000:81:00.0",
		"env    PCIDEVICE_BERTH_IO_SRIOV_NETDEVICE=0000:80:00.0,0000:81:00.0",
		"env    PCIDEVICE_BERTH_IO_SRIOV_DPDK=0000:80:00.4,0000:80:00.5",
		"device /dev/vfio/vfio (rw)",
		"device /dev/vfio/104 (rw)",
		"device /dev/infiniband/rdma_cm (rw)",
		`devinfo berth.io-mlnx_rdma-0000:82:00.0-device.json: {"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:82:00.0","pf-pci-address":"0000:5e:00.0","rdma-device":"mlx5_0"}}`,
		"berth.io/sriov_netdevice     6 of 10 devices healthy",
		"berth.io/sriov_dpdk          0 of 2 devices healthy",
		"berth.io/mlnx_rdma           4 of 4 devices healthy",
		"berth.io/mlnx_rdma           registered again, 4 devices (4 healthy)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", got)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	err := Run(context.Background(), Options{Config: []byte(`{"resourceList": [{"resourceName": "x"}]}`), DefaultPrefix: "berth.io", Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), `resourceList[0] (resourceName "x"): selectors: required`) {
		t.Errorf("got %v", err)
	}
}
