package server

import (
	"context"
	"fmt"
	"path"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/allocation"
	"github.com/berth-io/berth/deviceplugin/config"
)

// Device nodes handed to containers.
const (
	vfioDir      = "/dev/vfio"
	vfioControl  = "/dev/vfio/vfio"
	rdmaDir      = "/dev/infiniband"
	rdmaCM       = "/dev/infiniband/rdma_cm"
	devicePerms  = "rw" // read and write; no mknod: the runtime creates the nodes
	maxAllocSize = 1 << 16
)

// service is the DevicePlugin gRPC service of one run of a Server: its
// streams end when that run stops.
type service struct {
	pluginapi.UnimplementedDevicePluginServer
	s   *Server
	ctx context.Context
}

var _ pluginapi.DevicePluginServer = (*service)(nil)

// GetDevicePluginOptions: no PreStartContainer work, preferences offered.
func (v *service) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return options(), nil
}

// ListAndWatch sends the device list, then again on every change, until the
// kubelet hangs up or the Server stops.
func (v *service) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	for {
		devs, changed := v.s.snapshot()
		if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		case <-v.ctx.Done():
			return nil
		}
	}
}

// GetPreferredAllocation answers each container's request with
// allocation.Preferred.
func (v *service) GetPreferredAllocation(_ context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	placement := v.s.placement()
	resp := &pluginapi.PreferredAllocationResponse{}
	for i, c := range req.GetContainerRequests() {
		size := int(c.GetAllocationSize())
		ids, err := allocation.Preferred(placement, c.GetAvailableDeviceIDs(), c.GetMustIncludeDeviceIDs(), size)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%s: container request %d: %v", v.s.name, i, err)
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate gives each container the PCI addresses of its VFs in EnvName,
// and the device nodes it needs: /dev/vfio/vfio and /dev/vfio/<group> for
// VFs bound to vfio-pci, the RDMA character devices for VFs with RDMA. A
// request naming a VF the resource does not have fails whole.
func (v *service) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for i, c := range req.GetContainerRequests() {
		cr, err := v.s.allocate(c.GetDevicesIds())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%s: container request %d: %v", v.s.name, i, err)
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cr)
	}
	return resp, nil
}

// PreStartContainer is never called: GetDevicePluginOptions says so.
func (v *service) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func (s *Server) placement() map[string]allocation.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]allocation.Device, len(s.devices))
	for id, d := range s.devices {
		if d.gone {
			continue
		}
		numa := d.vf.NUMANode
		if s.res.ExcludeTopology {
			numa = -1
		}
		m[id] = allocation.Device{PF: d.vf.PFAddress, NUMA: numa}
	}
	return m
}

func (s *Server) allocate(ids []string) (*pluginapi.ContainerAllocateResponse, error) {
	if len(ids) == 0 || len(ids) > maxAllocSize {
		return nil, fmt.Errorf("%d devices requested", len(ids))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &pluginapi.ContainerAllocateResponse{}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			resp.Devices = append(resp.Devices, &pluginapi.DeviceSpec{ContainerPath: p, HostPath: p, Permissions: devicePerms})
		}
	}
	for _, id := range ids {
		d, ok := s.devices[id]
		switch {
		case !ok:
			return nil, fmt.Errorf("no device %s", id)
		case d.gone:
			return nil, fmt.Errorf("device %s is no longer present", id)
		}
		if d.vf.Driver == config.VFIODriver {
			if d.vf.IOMMUGroup == "" {
				return nil, fmt.Errorf("device %s is bound to vfio-pci but has no IOMMU group", id)
			}
			add(vfioControl)
			add(path.Join(vfioDir, d.vf.IOMMUGroup))
		}
		if d.vf.RDMA() {
			add(rdmaCM)
			for _, dev := range d.vf.RDMADevices {
				add(path.Join(rdmaDir, dev))
			}
		}
	}
	resp.Envs = map[string]string{s.envName: strings.Join(ids, ",")}
	return resp, nil
}
