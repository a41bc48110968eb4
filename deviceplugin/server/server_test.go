package server_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/kubelettest"
	"github.com/berth-io/berth/deviceplugin/selector"
	"github.com/berth-io/berth/deviceplugin/server"
	"github.com/berth-io/berth/deviceplugin/sysfs"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

// socketDir is a short temporary directory: a unix socket path must fit in
// 107 bytes, which t.TempDir() under a long test name may not.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fixture is a Standard sysfs tree, a test kubelet and one started Server
// registered with it.
type fixture struct {
	tree    *sysfstest.Tree
	reader  *sysfs.Reader
	kubelet *kubelettest.Kubelet
	srv     *server.Server
	sel     *selector.Resource
	res     config.Resource
}

func newFixture(t *testing.T, resource string) *fixture {
	t.Helper()
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`{"resourceList": [`+resource+`]}`), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	dir := socketDir(t)
	k, err := kubelettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	f := &fixture{tree: tree, reader: sysfs.NewReader(tree.Root), kubelet: k, res: cfg.Resources[0], sel: selector.ForResource(cfg.Resources[0])}
	f.srv = server.New(server.Options{Resource: f.res, PluginDir: dir})
	f.scan(t)
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Register(ctx, k.SocketPath()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) scan(t *testing.T) {
	t.Helper()
	snap, err := f.reader.Discover()
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Update(f.sel.Select(snap.VFs))
}

func (f *fixture) wait(t *testing.T, cond func(kubelettest.State) bool) kubelettest.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := f.kubelet.Wait(ctx, f.srv.ResourceName(), cond)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type dev struct {
	id, health string
	numa       int64 // -1: no topology
}

func devs(list []*pluginapi.Device) []dev {
	var out []dev
	for _, d := range list {
		numa := int64(-1)
		if d.GetTopology() != nil {
			numa = d.GetTopology().GetNodes()[0].GetID()
		}
		out = append(out, dev{d.GetID(), d.GetHealth(), numa})
	}
	return out
}

const intelNetdevice = `{"resourceName": "intel_netdevice", "selectors": {"vendors": ["8086"], "drivers": ["iavf"], "pfNames": ["ens785f0", "ens817f0"]}}`

func TestRegistersAndListsSelectedVFs(t *testing.T) {
	f := newFixture(t, intelNetdevice)
	st := f.wait(t, func(s kubelettest.State) bool { return s.Connected && len(s.Devices) > 0 })
	want := []dev{
		{"0000:80:00.0", "Healthy", 0}, {"0000:80:00.1", "Healthy", 0}, {"0000:80:00.2", "Healthy", 0}, {"0000:80:00.3", "Healthy", 0},
		{"0000:83:00.0", "Healthy", 1}, {"0000:83:00.1", "Healthy", 1},
	}
	if got := devs(st.Devices); !reflect.DeepEqual(got, want) {
		t.Errorf("kubelet sees\n%v\nwant\n%v", got, want)
	}
	if st.Registrations != 1 || !st.Options.GetGetPreferredAllocationAvailable() || st.Options.GetPreStartRequired() {
		t.Errorf("registrations %d, options %+v", st.Registrations, st.Options)
	}
	if got := f.kubelet.Resources(); !reflect.DeepEqual(got, []string{"berth.io/intel_netdevice"}) {
		t.Errorf("kubelet resources %v", got)
	}
}

func TestExcludeTopology(t *testing.T) {
	f := newFixture(t, `{"resourceName": "mlx", "excludeTopology": true, "selectors": {"vendors": ["15b3"]}}`)
	st := f.wait(t, func(s kubelettest.State) bool { return len(s.Devices) == 4 })
	for _, d := range st.Devices {
		if d.GetTopology() != nil {
			t.Errorf("device %s carries topology %v", d.GetID(), d.GetTopology())
		}
	}
}

func TestHealthChangesAreStreamed(t *testing.T) {
	f := newFixture(t, intelNetdevice)
	f.wait(t, func(s kubelettest.State) bool { return s.Healthy() == 6 })

	// The PF cable is pulled: all four VFs of ens785f0 go Unhealthy.
	if err := f.tree.SetLink("ens785f0", "down", true); err != nil {
		t.Fatal(err)
	}
	f.scan(t)
	st := f.wait(t, func(s kubelettest.State) bool { return s.Healthy() == 2 })
	for _, d := range st.Devices {
		wantHealthy := strings.HasPrefix(d.GetID(), "0000:83:")
		if (d.GetHealth() == pluginapi.Healthy) != wantHealthy {
			t.Errorf("%s is %s after ens785f0 went down", d.GetID(), d.GetHealth())
		}
	}

	// The cable is back; one VF, set up by its user, loses its own link.
	if err := f.tree.SetLink("ens785f0", "up", true); err != nil {
		t.Fatal(err)
	}
	if err := f.tree.SetLink("ens817f0v1", "down", true); err != nil {
		t.Fatal(err)
	}
	f.scan(t)
	st = f.wait(t, func(s kubelettest.State) bool { return s.Healthy() == 5 })
	if d := st.Devices[5]; d.GetID() != "0000:83:00.1" || d.GetHealth() != pluginapi.Unhealthy {
		t.Errorf("last device %v, want 0000:83:00.1 Unhealthy", d)
	}

	// A VF disappears: it stays listed, Unhealthy.
	if err := f.tree.SetLink("ens817f0v1", "up", true); err != nil {
		t.Fatal(err)
	}
	if err := f.tree.RemoveVF("0000:3b:00.0", 2); err != nil {
		t.Fatal(err)
	}
	f.scan(t)
	st = f.wait(t, func(s kubelettest.State) bool {
		return s.Healthy() == 5 && s.Devices[5].GetHealth() == pluginapi.Healthy
	})
	if len(st.Devices) != 6 || st.Devices[2].GetID() != "0000:80:00.2" || st.Devices[2].GetHealth() != pluginapi.Unhealthy {
		t.Errorf("after removing VF 2 of ens785f0: %v", devs(st.Devices))
	}
	// Allocating it fails.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.kubelet.Allocate(ctx, f.srv.ResourceName(), []string{"0000:80:00.2"}); err == nil || !strings.Contains(err.Error(), "no longer present") {
		t.Errorf("allocating a vanished VF: %v", err)
	}

	// A scan that changes nothing sends nothing.
	before := f.wait(t, func(kubelettest.State) bool { return true }).Updates
	f.scan(t)
	if changed := f.srv.Update(f.sel.Select(mustDiscover(t, f.reader).VFs)); changed {
		t.Error("an identical scan reported a change")
	}
	if after := f.kubelet.State(f.srv.ResourceName()).Updates; after != before {
		t.Errorf("identical scans streamed %d lists", after-before)
	}
}

func mustDiscover(t *testing.T, r *sysfs.Reader) *sysfs.Snapshot {
	t.Helper()
	snap, err := r.Discover()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestAllocate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		resource   string
		containers [][]string
		envs       []map[string]string
		specs      [][]string // host paths; container path and permissions are checked to match
		err        string
	}{
		{
			name:       "netdevice VFs",
			resource:   intelNetdevice,
			containers: [][]string{{"0000:80:00.1", "0000:83:00.0"}, {"0000:80:00.0"}},
			envs: []map[string]string{
				{"PCIDEVICE_BERTH_IO_INTEL_NETDEVICE": "0000:80:00.1,0000:83:00.0"},
				{"PCIDEVICE_BERTH_IO_INTEL_NETDEVICE": "0000:80:00.0"},
			},
			specs: [][]string{nil, nil},
		},
		{
			name:       "vfio-pci VFs",
			resource:   `{"resourceName": "intel-dpdk", "resourcePrefix": "intel.com", "deviceType": "vfio-pci", "selectors": {"vendors": ["8086"]}}`,
			containers: [][]string{{"0000:80:00.4", "0000:80:00.5"}},
			envs:       []map[string]string{{"PCIDEVICE_INTEL_COM_INTEL_DPDK": "0000:80:00.4,0000:80:00.5"}},
			specs:      [][]string{{"/dev/vfio/vfio", "/dev/vfio/104", "/dev/vfio/105"}},
		},
		{
			name:       "RDMA VFs",
			resource:   `{"resourceName": "mlnx_rdma", "selectors": {"vendors": ["15b3"], "isRdma": true}}`,
			containers: [][]string{{"0000:82:00.1"}},
			envs:       []map[string]string{{"PCIDEVICE_BERTH_IO_MLNX_RDMA": "0000:82:00.1"}},
			specs:      [][]string{{"/dev/infiniband/rdma_cm", "/dev/infiniband/uverbs1", "/dev/infiniband/issm1", "/dev/infiniband/umad1"}},
		},
		{
			name:       "a VF of another resource",
			resource:   intelNetdevice,
			containers: [][]string{{"0000:80:00.1"}, {"0000:81:00.0"}},
			err:        "berth.io/intel_netdevice: container request 1: no device 0000:81:00.0",
		},
		{
			name:       "no device",
			resource:   intelNetdevice,
			containers: [][]string{{}},
			err:        "container request 0: 0 devices requested",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.resource)
			f.wait(t, func(s kubelettest.State) bool { return len(s.Devices) > 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := f.kubelet.Allocate(ctx, f.srv.ResourceName(), tc.containers...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetContainerResponses()) != len(tc.containers) {
				t.Fatalf("%d responses for %d containers", len(resp.GetContainerResponses()), len(tc.containers))
			}
			for i, cr := range resp.GetContainerResponses() {
				if !reflect.DeepEqual(cr.GetEnvs(), tc.envs[i]) {
					t.Errorf("container %d envs %v, want %v", i, cr.GetEnvs(), tc.envs[i])
				}
				var paths []string
				for _, s := range cr.GetDevices() {
					paths = append(paths, s.GetHostPath())
					if s.GetContainerPath() != s.GetHostPath() || s.GetPermissions() != "rw" {
						t.Errorf("device spec %v", s)
					}
				}
				if !reflect.DeepEqual(paths, tc.specs[i]) {
					t.Errorf("container %d device specs %v, want %v", i, paths, tc.specs[i])
				}
			}
		})
	}
}

func TestGetPreferredAllocation(t *testing.T) {
	f := newFixture(t, `{"resourceName": "all_kernel_vfs", "selectors": {"drivers": ["iavf", "mlx5_core"]}}`)
	st := f.wait(t, func(s kubelettest.State) bool { return len(s.Devices) == 14 })
	var all []string
	for _, d := range st.Devices {
		all = append(all, d.GetID())
	}
	for _, tc := range []struct {
		name      string
		available []string
		must      []string
		size      int
		want      []string
	}{
		// NUMA 0 holds ens785f0 (4 iavf VFs) and ens785f1 (4): two VFs, two PFs.
		{"spread over the PFs of the fullest node", all, nil, 2, []string{"0000:80:00.0", "0000:81:00.0"}},
		// A must-include VF on NUMA 1 keeps the rest there, on the other PF.
		{"keep the NUMA node of a must-include VF", all, []string{"0000:82:00.3"}, 3, []string{"0000:82:00.3", "0000:83:00.0", "0000:82:00.0"}},
		{"stay on one node when it can hold the request", []string{"0000:80:00.0", "0000:82:00.0", "0000:83:00.0", "0000:83:00.1"}, nil, 3,
			[]string{"0000:83:00.0", "0000:82:00.0", "0000:83:00.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := f.kubelet.PreferredAllocation(ctx, f.srv.ResourceName(), tc.available, tc.must, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("preferred %v, want %v", got, tc.want)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.kubelet.PreferredAllocation(ctx, f.srv.ResourceName(), all[:1], nil, 2); err == nil {
		t.Error("a preference larger than the available devices succeeded")
	}
}

func TestStopEndsStreamAndRemovesSocket(t *testing.T) {
	f := newFixture(t, intelNetdevice)
	f.wait(t, func(s kubelettest.State) bool { return s.Connected })
	if !f.srv.Serving() {
		t.Fatal("a started server is not serving")
	}
	f.srv.Stop()
	f.wait(t, func(s kubelettest.State) bool { return !s.Connected })
	if _, err := os.Stat(f.srv.SocketPath()); !os.IsNotExist(err) {
		t.Errorf("socket still there after Stop: %v", err)
	}
	if f.srv.Serving() {
		t.Error("a stopped server says it is serving")
	}
	// Restarting keeps the device list; the kubelet gets it on registration.
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Start(); err == nil {
		t.Error("a second Start succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Register(ctx, f.kubelet.SocketPath()); err != nil {
		t.Fatal(err)
	}
	// The first list on the new stream is the whole resource again.
	f.wait(t, func(s kubelettest.State) bool {
		return s.Connected && s.Registrations == 2 && s.Updates == 1 && len(s.Devices) == 6
	})
}

func TestServingNoticesDeletedSocket(t *testing.T) {
	f := newFixture(t, intelNetdevice)
	if err := os.Remove(f.srv.SocketPath()); err != nil {
		t.Fatal(err)
	}
	if f.srv.Serving() {
		t.Error("Serving() is true with the socket deleted")
	}
	// A file of the same name made by someone else is not ours either.
	if err := os.WriteFile(f.srv.SocketPath(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.srv.Serving() {
		t.Error("Serving() is true with the socket replaced")
	}
	f.srv.Stop()
	if _, err := os.Stat(f.srv.SocketPath()); err != nil {
		t.Errorf("Stop removed a file it did not create: %v", err)
	}
}

func TestRegisterFailsWithoutKubelet(t *testing.T) {
	dir := socketDir(t)
	cfg, err := config.Parse([]byte(`{"resourceList": [`+intelNetdevice+`]}`), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Resource: cfg.Resources[0], PluginDir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Register(ctx, filepath.Join(dir, "kubelet.sock"))
	if err == nil || !strings.Contains(err.Error(), "registering berth.io/intel_netdevice with the kubelet") {
		t.Errorf("got %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for _, tc := range []struct{ prefix, name, want string }{
		{"intel.com", "intel_sriov_netdevice", "PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE"},
		{"berth.io", "sriov-net.a", "PCIDEVICE_BERTH_IO_SRIOV_NET_A"},
		{"example-1.org", "Net2", "PCIDEVICE_EXAMPLE_1_ORG_NET2"},
	} {
		if got := server.EnvName(config.Resource{Prefix: tc.prefix, Name: tc.name}); got != tc.want {
			t.Errorf("EnvName(%s/%s) = %s, want %s", tc.prefix, tc.name, got, tc.want)
		}
	}
}

func TestLongNamesGetAShortSocket(t *testing.T) {
	dir := socketDir(t)
	r := config.Resource{Prefix: strings.Repeat("a", 60) + ".example.com", Name: strings.Repeat("n", 63)}
	srv := server.New(server.Options{Resource: r, PluginDir: dir})
	if n := len(srv.SocketPath()); n > 107 {
		t.Fatalf("socket path of %d bytes", n)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
}
