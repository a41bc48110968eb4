package server_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/selector"
	"github.com/berth-io/berth/deviceplugin/server"
	"github.com/berth-io/berth/deviceplugin/sysfs"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

// BenchmarkRPC measures the kubelet's calls over the unix socket against a
// resource of 256 VFs (4 PFs on 2 NUMA nodes, half bound to vfio-pci).
// GetDevicePluginOptions, which does no work, is the baseline: the rest is
// the plugin's own cost.
func BenchmarkRPC(b *testing.B) {
	tree, err := sysfstest.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 4 {
		vfio := map[int]string{}
		for v := 32; v < 64; v++ {
			vfio[v] = "vfio-pci"
		}
		if _, err := tree.AddPF(sysfstest.PF{Address: fmt.Sprintf("0000:%02x:00.0", 0x10+i), Name: fmt.Sprintf("ens%df0", i),
			Vendor: "8086", DeviceID: "1593", Driver: "ice", NUMANode: i / 2, NumVFs: 64, VFDeviceID: "154c", VFDriver: "iavf", VFDrivers: vfio}); err != nil {
			b.Fatal(err)
		}
	}
	snap, err := sysfs.NewReader(tree.Root).Discover()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`{"resourceList": [{"resourceName": "all", "selectors": {}}]}`), "berth.io")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Options{Resource: cfg.Resources[0], PluginDir: socketDir(b)})
	srv.Update(selector.ForResource(cfg.Resources[0]).Select(snap.VFs))
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := pluginapi.NewDevicePluginClient(conn)
	ctx := context.Background()
	var all []string
	for _, vf := range snap.VFs {
		all = append(all, vf.Address)
	}
	netdev := []string{snap.VFs[0].Address, snap.VFs[64].Address}
	vfio := []string{snap.VFs[32].Address, snap.VFs[96].Address}

	b.Run("GetDevicePluginOptions", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.GetDevicePluginOptions(ctx, &pluginapi.Empty{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		ids  []string
	}{{"Allocate/netdevice-2", netdev}, {"Allocate/vfio-2", vfio}} {
		req := &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: tc.ids}}}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Allocate(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	req := &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
		AvailableDeviceIDs: all, AllocationSize: 4,
	}}}
	b.Run("GetPreferredAllocation/256-choose-4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.GetPreferredAllocation(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
