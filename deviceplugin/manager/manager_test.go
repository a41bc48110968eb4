package manager_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/kubelettest"
	"github.com/berth-io/berth/deviceplugin/manager"
	"github.com/berth-io/berth/deviceplugin/sysfs"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

const threeResources = `{"resourceList": [
  {"resourceName": "intel_netdevice", "selectors": {"vendors": ["8086"], "drivers": ["iavf"]}},
  {"resourceName": "intel_dpdk", "deviceType": "vfio-pci", "selectors": {"pfNames": ["ens785f0"]}},
  {"resourceName": "mlnx_rdma", "resourcePrefix": "nvidia.com", "selectors": {"vendors": ["15b3"], "isRdma": true}},
  {"resourceName": "typo", "selectors": {"pfNames": ["ens875f0"]}}
]}`

// logBuffer collects the manager's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	tree       *sysfstest.Tree
	pluginDir  string
	devInfoDir string
	cfgPath    string
	logs       *logBuffer
	kubelet    *kubelettest.Kubelet
}

func newEnv(t *testing.T, cfg string, withKubelet bool) *env {
	t.Helper()
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dp") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{tree: tree, pluginDir: dir, devInfoDir: filepath.Join(t.TempDir(), "devinfo", "dp"), cfgPath: filepath.Join(t.TempDir(), "config.json"), logs: &logBuffer{}}
	e.writeConfig(t, cfg)
	if withKubelet {
		e.startKubelet(t)
	}
	return e
}

func (e *env) startKubelet(t *testing.T) {
	t.Helper()
	k, err := kubelettest.Start(e.pluginDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	e.kubelet = k
}

func (e *env) writeConfig(t *testing.T, cfg string) {
	t.Helper()
	// Write and rename, as a ConfigMap update swaps the file whole.
	tmp := e.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		t.Fatal(err)
	}
}

// run starts a Manager and returns a function that stops it and checks that
// Run returned nil.
func (e *env) run(t *testing.T) (*manager.Manager, func()) {
	t.Helper()
	m, err := manager.New(manager.Options{
		ConfigPath: e.cfgPath, DefaultPrefix: "berth.io", SysfsRoot: e.tree.Root, PluginDir: e.pluginDir,
		PollInterval: 50 * time.Millisecond, RegisterTimeout: 5 * time.Second, DeviceInfoDir: e.devInfoDir,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return m, stop
}

func (e *env) wait(t *testing.T, resource string, what string, cond func(kubelettest.State) bool) kubelettest.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := e.kubelet.Wait(ctx, resource, cond)
	if err != nil {
		t.Fatalf("%s: %v\nlogs:\n%s", what, err, e.logs)
	}
	return st
}

func ids(st kubelettest.State) []string {
	var out []string
	for _, d := range st.Devices {
		out = append(out, d.GetID())
	}
	return out
}

func TestRunAdvertisesEveryResource(t *testing.T) {
	e := newEnv(t, threeResources, true)
	m, _ := e.run(t)
	if got := strings.Join(m.Resources(), " "); got != "berth.io/intel_netdevice berth.io/intel_dpdk nvidia.com/mlnx_rdma berth.io/typo" {
		t.Errorf("Resources() = %s", got)
	}
	for _, tc := range []struct {
		resource string
		want     string
	}{
		{"berth.io/intel_netdevice", "0000:80:00.0 0000:80:00.1 0000:80:00.2 0000:80:00.3 0000:81:00.0 0000:81:00.1 0000:81:00.2 0000:81:00.3 0000:83:00.0 0000:83:00.1"},
		{"berth.io/intel_dpdk", "0000:80:00.4 0000:80:00.5"},
		{"nvidia.com/mlnx_rdma", "0000:82:00.0 0000:82:00.1 0000:82:00.2 0000:82:00.3"},
	} {
		st := e.wait(t, tc.resource, "listing", func(s kubelettest.State) bool { return s.Connected && len(s.Devices) > 0 })
		if got := strings.Join(ids(st), " "); got != tc.want {
			t.Errorf("%s: kubelet sees %s\nwant %s", tc.resource, got, tc.want)
		}
	}
	// The resource whose selector matches nothing registers empty, and says why.
	st := e.wait(t, "berth.io/typo", "empty resource", func(s kubelettest.State) bool { return s.Connected })
	if len(st.Devices) != 0 {
		t.Errorf("typo resource lists %v", ids(st))
	}
	if logs := e.logs.String(); !strings.Contains(logs, `msg="resource selects no VF: check its selectors against the node's NICs" resource=berth.io/typo index=3 vfsOnNode=16`) {
		t.Errorf("no clear log line for the resource selecting nothing:\n%s", logs)
	}
}

func TestReregistersWhenKubeletRestarts(t *testing.T) {
	e := newEnv(t, threeResources, true)
	e.run(t)
	all := []string{"berth.io/intel_netdevice", "berth.io/intel_dpdk", "nvidia.com/mlnx_rdma", "berth.io/typo"}
	regs := map[string]int{}
	for _, res := range all {
		regs[res] = e.wait(t, res, "first registration", func(s kubelettest.State) bool { return s.Connected && s.Updates > 0 }).Registrations
	}
	for restart := 1; restart <= 2; restart++ {
		if err := e.kubelet.Restart(); err != nil {
			t.Fatal(err)
		}
		// Every resource comes back, not only the one we watch.
		for _, res := range all {
			st := e.wait(t, res, "registration after kubelet restart", func(s kubelettest.State) bool {
				return s.Registrations > regs[res] && s.Connected && s.Updates > 0
			})
			regs[res] = st.Registrations
		}
		if st := e.kubelet.State("berth.io/intel_dpdk"); st.Healthy() != 2 {
			t.Errorf("after restart %d: %d healthy devices", restart, st.Healthy())
		}
	}
	// Registering is driven by the kubelet's socket, not repeated on polls: a
	// restart costs one registration, two when a poll lands between the
	// socket deletions and the new kubelet.sock.
	const res = "berth.io/intel_dpdk"
	time.Sleep(5 * 50 * time.Millisecond) // five polls: the last events settle
	n := e.kubelet.State(res).Registrations
	time.Sleep(10 * 50 * time.Millisecond) // ten polls
	if after := e.kubelet.State(res).Registrations; after != n || n > 5 {
		t.Errorf("%d registrations for 3 kubelet starts, %d ten polls later", n, after)
	}
}

func TestRegistersWhenKubeletStartsLate(t *testing.T) {
	e := newEnv(t, threeResources, false)
	e.run(t)
	// Let the plugin try and fail first.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "registration failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed registration logged:\n%s", e.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.startKubelet(t)
	e.wait(t, "nvidia.com/mlnx_rdma", "registration with a late kubelet", func(s kubelettest.State) bool { return s.Connected && len(s.Devices) == 4 })
}

func TestHealthIsPolled(t *testing.T) {
	e := newEnv(t, threeResources, true)
	e.run(t)
	const res = "berth.io/intel_dpdk"
	e.wait(t, res, "healthy", func(s kubelettest.State) bool { return s.Healthy() == 2 })
	if err := e.tree.SetLink("ens785f0", "down", true); err != nil {
		t.Fatal(err)
	}
	st := e.wait(t, res, "unhealthy after the PF link went down", func(s kubelettest.State) bool { return len(s.Devices) == 2 && s.Healthy() == 0 })
	for _, d := range st.Devices {
		if d.GetHealth() != pluginapi.Unhealthy {
			t.Errorf("%s is %s", d.GetID(), d.GetHealth())
		}
	}
	if err := e.tree.SetLink("ens785f0", "up", true); err != nil {
		t.Fatal(err)
	}
	e.wait(t, res, "healthy again", func(s kubelettest.State) bool { return s.Healthy() == 2 })
	if !strings.Contains(e.logs.String(), `reason="PF ens785f0 link is down"`) {
		t.Errorf("the health change is not logged with its reason:\n%s", e.logs)
	}
}

func TestConfigChangesUpdateResources(t *testing.T) {
	e := newEnv(t, threeResources, true)
	e.run(t)
	e.wait(t, "berth.io/intel_netdevice", "start", func(s kubelettest.State) bool { return len(s.Devices) == 10 })
	e.wait(t, "berth.io/typo", "start", func(s kubelettest.State) bool { return s.Connected })

	// intel_netdevice narrows to one PF, typo is removed, a resource is added,
	// mlnx_rdma and intel_dpdk are unchanged (and move in the list).
	e.writeConfig(t, `{"resourceList": [
  {"resourceName": "mlnx_rdma", "resourcePrefix": "nvidia.com", "selectors": {"vendors": ["15b3"], "isRdma": true}},
  {"resourceName": "intel_dpdk", "deviceType": "vfio-pci", "selectors": {"pfNames": ["ens785f0"]}},
  {"resourceName": "intel_netdevice", "selectors": {"pfNames": ["ens785f1#0-1"]}},
  {"resourceName": "numa1", "selectors": {"rootDevices": ["0000:af:00.0"]}}
]}`)
	st := e.wait(t, "berth.io/intel_netdevice", "changed resource", func(s kubelettest.State) bool {
		return s.Registrations == 2 && len(s.Devices) == 2
	})
	if got := strings.Join(ids(st), " "); got != "0000:81:00.0 0000:81:00.1" {
		t.Errorf("changed resource lists %s", got)
	}
	e.wait(t, "berth.io/numa1", "added resource", func(s kubelettest.State) bool { return len(s.Devices) == 2 })
	e.wait(t, "berth.io/typo", "removed resource", func(s kubelettest.State) bool { return !s.Connected })
	for _, res := range []string{"nvidia.com/mlnx_rdma", "berth.io/intel_dpdk"} {
		if st := e.kubelet.State(res); st.Registrations != 1 || !st.Connected {
			t.Errorf("unchanged %s: %d registrations, connected %v", res, st.Registrations, st.Connected)
		}
	}

	// An invalid file is refused; the running resources keep serving.
	e.writeConfig(t, `{"resourceList": [{"resourceName": "x", "selectors": {"vendor": ["8086"]}}]}`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "the new configuration is invalid") {
		if time.Now().After(deadline) {
			t.Fatalf("invalid configuration not logged:\n%s", e.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(e.logs.String(), `resourceList[0] (resourceName \"x\"): selectors.vendor: unknown field`) {
		t.Errorf("the log does not name the entry and field:\n%s", e.logs)
	}
	if got := e.kubelet.Resources(); len(got) != 4 {
		t.Errorf("after an invalid configuration the kubelet has %v", got)
	}
}

// Every selected VF gets its Device Information file, which Multus copies
// into the pod's network-status; the files follow VFs that go and
// resources that are removed, and none is left once the plugin stops.
func TestDeviceInformationFiles(t *testing.T) {
	e := newEnv(t, threeResources, true)
	_, stop := e.run(t)
	files := func() []string {
		entries, _ := os.ReadDir(e.devInfoDir)
		var out []string
		for _, en := range entries {
			out = append(out, en.Name())
		}
		return out
	}
	waitFiles := func(what string, cond func([]string) bool) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := files()
			if cond(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: device information files %v\nlogs:\n%s", what, got, e.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	count := func(prefix string) func([]string) int {
		return func(names []string) int {
			n := 0
			for _, name := range names {
				if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, "-device.json") {
					n++
				}
			}
			return n
		}
	}
	netdev, dpdk, rdma := count("berth.io-intel_netdevice-"), count("berth.io-intel_dpdk-"), count("nvidia.com-mlnx_rdma-")
	waitFiles("start", func(n []string) bool { return len(n) == 16 && netdev(n) == 10 && dpdk(n) == 2 && rdma(n) == 4 })

	data, err := os.ReadFile(devinfo.Path(e.devInfoDir, "nvidia.com/mlnx_rdma", "0000:82:00.2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:82:00.2","pf-pci-address":"0000:5e:00.0","rdma-device":"mlx5_2"}}`; string(data) != want {
		t.Errorf("device information of an RDMA VF:\n%s\nwant\n%s", data, want)
	}

	if err := e.tree.RemoveVF("0000:3b:00.0", 5); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Base(devinfo.Path(e.devInfoDir, "berth.io/intel_dpdk", "0000:80:00.5"))
	waitFiles("a VF removed", func(n []string) bool { return !slices.Contains(n, gone) && dpdk(n) == 1 })

	e.writeConfig(t, `{"resourceList": [
  {"resourceName": "intel_netdevice", "selectors": {"vendors": ["8086"], "drivers": ["iavf"]}},
  {"resourceName": "intel_dpdk", "deviceType": "vfio-pci", "selectors": {"pfNames": ["ens785f0"]}}
]}`)
	waitFiles("a resource removed", func(n []string) bool { return rdma(n) == 0 && len(n) == 11 })

	stop()
	if left := files(); len(left) != 0 {
		t.Errorf("device information files left after the plugin stopped: %v", left)
	}
}

func TestStopRemovesSocketsAndGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	e := newEnv(t, threeResources, true)
	_, stop := e.run(t)
	e.wait(t, "berth.io/intel_dpdk", "start", func(s kubelettest.State) bool { return s.Connected })
	stop()
	e.wait(t, "berth.io/intel_dpdk", "disconnect", func(s kubelettest.State) bool { return !s.Connected })
	// The kubelet holds client connections of its own: stop it too, so what
	// is left is what the manager leaked.
	e.kubelet.Stop()
	entries, err := os.ReadDir(e.pluginDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() != kubelettest.SocketName {
			t.Errorf("%s left in the plugin directory", en.Name())
		}
	}
	// gRPC's transports wind down asynchronously: allow them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before Run, %d after it returned:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte("resourceList:\n- resourceName: net\n  selectors: {pfNames: ['ens1#4-2']}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := manager.New(manager.Options{ConfigPath: p, DefaultPrefix: "berth.io"})
	want := p + `: resourceList[0] (resourceName "net"): selectors.pfNames[0]: "ens1#4-2": VF range 4-2 ends before it starts`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if _, err := manager.New(manager.Options{ConfigPath: filepath.Join(dir, "missing.json"), DefaultPrefix: "berth.io"}); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, err := manager.New(manager.Options{DefaultPrefix: "berth.io"}); err == nil {
		t.Error("no file was accepted")
	}
}

func TestPreview(t *testing.T) {
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := sysfs.NewReader(tree.Root).Discover()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(threeResources), "berth.io")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, s := range manager.Preview(cfg, snap) {
		got = append(got, len(s.VFs))
	}
	if want := []int{10, 2, 4, 0}; !slicesEqual(got, want) {
		t.Errorf("preview counts %v, want %v", got, want)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
