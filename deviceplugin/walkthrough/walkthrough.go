// Package walkthrough runs berth-sriov-dp on a simulated node and tells what
// happens: a fake sysfs tree with Intel and Mellanox NICs on two NUMA nodes,
// the real manager and gRPC servers, and a test kubelet that registers them,
// watches their devices, asks for preferred allocations and allocates. It is
// the SR-IOV step of `make demo`.
package walkthrough

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/kubelettest"
	"github.com/berth-io/berth/deviceplugin/manager"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

// Options of Run.
type Options struct {
	// Config is the resource list to run with (JSON or YAML).
	Config []byte
	// DefaultPrefix is the resourcePrefix of entries without one.
	DefaultPrefix string
	// Out receives the narration; Step prints a heading (nil: a plain line).
	Out  io.Writer
	Step func(string)
}

// waitTimeout bounds every wait for the kubelet to see something.
const waitTimeout = 20 * time.Second

// Run builds the node, runs the plugin on it and narrates. Its temporary
// files are removed when it returns.
func Run(ctx context.Context, o Options) (err error) {
	step := o.Step
	if step == nil {
		step = func(s string) { fmt.Fprintf(o.Out, "\n%s\n", s) }
	}
	cfg, err := config.Parse(o.Config, o.DefaultPrefix)
	if err != nil {
		return fmt.Errorf("walkthrough configuration: %w", err)
	}
	// Socket paths are limited to 107 bytes: a short directory of our own.
	work, err := os.MkdirTemp("", "berth-sriov")
	if err != nil {
		return fmt.Errorf("creating the walkthrough directory: %w", err)
	}
	defer os.RemoveAll(work)
	sysRoot, pluginDir, cfgPath := filepath.Join(work, "sys"), filepath.Join(work, "dp"), filepath.Join(work, "config.json")
	infoDir := filepath.Join(work, "devinfo")
	for _, d := range []string{sysRoot, pluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := os.WriteFile(cfgPath, o.Config, 0o644); err != nil {
		return fmt.Errorf("writing the walkthrough configuration: %w", err)
	}

	step("SR-IOV: a simulated node (fake sysfs tree) with these PFs")
	tree, err := sysfstest.Standard(sysRoot)
	if err != nil {
		return err
	}
	printPFs(o.Out)

	k, err := kubelettest.Start(pluginDir)
	if err != nil {
		return err
	}
	defer k.Stop()
	m, err := manager.New(manager.Options{
		ConfigPath: cfgPath, DefaultPrefix: o.DefaultPrefix, SysfsRoot: sysRoot, PluginDir: pluginDir,
		PollInterval: 200 * time.Millisecond, DeviceInfoDir: infoDir, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	defer func() {
		cancel()
		if rerr := <-done; rerr != nil && err == nil {
			err = rerr
		}
	}()

	step("SR-IOV: berth-sriov-dp registered with the test kubelet; what ListAndWatch advertises")
	states := map[string]kubelettest.State{}
	for _, r := range cfg.Resources {
		st, err := wait(ctx, k, r.FullName(), func(s kubelettest.State) bool { return s.Connected && s.Updates > 0 })
		if err != nil {
			return err
		}
		states[r.FullName()] = st
	}
	printDevices(o.Out, cfg, states)

	step("SR-IOV: the kubelet asks for 2 VFs of each resource: preferred (NUMA, then spread over PFs), then Allocate")
	for _, r := range cfg.Resources {
		if err := allocate(ctx, o.Out, k, r, states[r.FullName()], infoDir); err != nil {
			return err
		}
	}

	step("SR-IOV: the cable of PF ens785f0 is pulled; the next sysfs poll streams its VFs as Unhealthy")
	if err := tree.SetLink("ens785f0", "down", true); err != nil {
		return err
	}
	for _, r := range cfg.Resources {
		want := healthyOutside(states[r.FullName()], "0000:80:") // the VFs of ens785f0
		st, err := wait(ctx, k, r.FullName(), func(s kubelettest.State) bool { return s.Healthy() == want })
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "%-28s %d of %d devices healthy\n", r.FullName(), st.Healthy(), len(st.Devices))
	}

	step("SR-IOV: the kubelet restarts (its sockets are deleted, kubelet.sock is created again); every resource registers again")
	regs := map[string]int{}
	for _, r := range cfg.Resources {
		regs[r.FullName()] = k.State(r.FullName()).Registrations
	}
	if err := k.Restart(); err != nil {
		return err
	}
	for _, r := range cfg.Resources {
		st, err := wait(ctx, k, r.FullName(), func(s kubelettest.State) bool {
			return s.Registrations > regs[r.FullName()] && s.Connected && s.Updates > 0
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "%-28s registered again, %d devices (%d healthy)\n", r.FullName(), len(st.Devices), st.Healthy())
	}
	return nil
}

// healthyOutside counts the healthy devices whose address lacks prefix.
func healthyOutside(st kubelettest.State, prefix string) int {
	n := 0
	for _, d := range st.Devices {
		if d.GetHealth() == pluginapi.Healthy && !strings.HasPrefix(d.GetID(), prefix) {
			n++
		}
	}
	return n
}

func wait(ctx context.Context, k *kubelettest.Kubelet, resource string, cond func(kubelettest.State) bool) (kubelettest.State, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	return k.Wait(ctx, resource, cond)
}

func printPFs(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PF\tNAME\tDRIVER\tNUMA\tVF VENDOR:DEVICE\tVFS")
	for _, pf := range sysfstest.StandardPFs() {
		drivers := map[string]int{}
		for i := range pf.NumVFs {
			d := pf.VFDriver
			if o, ok := pf.VFDrivers[i]; ok {
				d = o
			}
			drivers[d]++
		}
		var parts []string
		for d, n := range drivers {
			parts = append(parts, fmt.Sprintf("%d %s", n, d))
		}
		sort.Strings(parts)
		rdma := ""
		if pf.RDMA {
			rdma = ", RDMA"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s:%s\t%s%s\n", pf.Address, pf.Name, pf.Driver, pf.NUMANode, pf.Vendor, pf.VFDeviceID, strings.Join(parts, ", "), rdma)
	}
	_ = tw.Flush()
}

func printDevices(w io.Writer, cfg *config.Config, states map[string]kubelettest.State) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tDEVICES\tHEALTHY\tNUMA 0\tNUMA 1\tIDS")
	for _, r := range cfg.Resources {
		st := states[r.FullName()]
		numa := map[int64][]string{}
		for _, d := range st.Devices {
			n := int64(-1)
			if d.GetTopology() != nil && len(d.GetTopology().GetNodes()) > 0 {
				n = d.GetTopology().GetNodes()[0].GetID()
			}
			numa[n] = append(numa[n], d.GetID())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", r.FullName(), len(st.Devices), st.Healthy(), len(numa[0]), len(numa[1]), list(st.Devices))
	}
	_ = tw.Flush()
}

// list abbreviates the device IDs: 0000:80:00.0-3 for consecutive functions.
func list(devs []*pluginapi.Device) string {
	var parts []string
	for i := 0; i < len(devs); {
		id := devs[i].GetID()
		base, fn, ok := strings.Cut(id, ".")
		j := i + 1
		for ok && j < len(devs) && devs[j].GetID() == fmt.Sprintf("%s.%d", base, int(fn[0]-'0')+j-i) {
			j++
		}
		if j-i > 1 {
			id = fmt.Sprintf("%s-%d", id, int(fn[0]-'0')+j-i-1)
		}
		parts = append(parts, id)
		i = j
	}
	return strings.Join(parts, " ")
}

func allocate(ctx context.Context, w io.Writer, k *kubelettest.Kubelet, r config.Resource, st kubelettest.State, infoDir string) error {
	var avail []string
	for _, d := range st.Devices {
		if d.GetHealth() == pluginapi.Healthy {
			avail = append(avail, d.GetID())
		}
	}
	if len(avail) < 2 {
		fmt.Fprintf(w, "%s: fewer than 2 healthy devices, nothing to allocate\n", r.FullName())
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	ids, err := k.PreferredAllocation(cctx, r.FullName(), avail, nil, 2)
	if err != nil {
		return fmt.Errorf("preferred allocation of %s: %w", r.FullName(), err)
	}
	resp, err := k.Allocate(cctx, r.FullName(), ids)
	if err != nil {
		return fmt.Errorf("allocating %s: %w", r.FullName(), err)
	}
	c := resp.GetContainerResponses()[0]
	fmt.Fprintf(w, "%s: preferred %s\n", r.FullName(), strings.Join(ids, " "))
	for name, v := range c.GetEnvs() {
		fmt.Fprintf(w, "    env    %s=%s\n", name, v)
	}
	for _, d := range c.GetDevices() {
		fmt.Fprintf(w, "    device %s (%s)\n", d.GetHostPath(), d.GetPermissions())
	}
	// What Multus puts in the pod's network-status as device-info.
	path := devinfo.Path(infoDir, r.FullName(), ids[0])
	info, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("device information of %s %s: %w", r.FullName(), ids[0], err)
	}
	fmt.Fprintf(w, "    devinfo %s: %s\n", filepath.Base(path), info)
	return nil
}
