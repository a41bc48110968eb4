// Command berth-sriov-dp is Berth's SR-IOV device plugin: it advertises the
// VFs selected by its configuration to the kubelet as extended resources.
//
// With -dry-run it prints what each resource selects on this node and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/manager"
	"github.com/berth-io/berth/deviceplugin/server"
	"github.com/berth-io/berth/deviceplugin/sysfs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command: exit code 2 for bad flags, 1 for an invalid
// configuration or a failure, 0 after a signal.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth-sriov-dp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/berth/sriov-dp/config.json", "resource list (JSON or YAML), reloaded when it changes")
	prefix := fs.String("resource-prefix", "berth.io", "resourcePrefix of entries that give none")
	sysfsRoot := fs.String("sysfs", sysfs.DefaultRoot, "root of the sysfs tree to discover VFs in")
	pluginDir := fs.String("device-plugin-dir", server.DefaultPluginDir, "the kubelet's device plugin directory")
	devInfoDir := fs.String("device-info-dir", devinfo.DefaultDir, "where each selected VF gets a Device Information file (NPWG spec) for Multus to report its PCI address in network-status; empty writes none")
	poll := fs.Duration("poll-interval", manager.DefaultPollInterval, "how often VFs and their link health are read from sysfs")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	dryRun := fs.Bool("dry-run", false, "print what each resource selects on this node, then exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "berth-sriov-dp: -log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	if *poll < 100*time.Millisecond {
		fmt.Fprintf(stderr, "berth-sriov-dp: -poll-interval %s: at least 100ms\n", *poll)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *dryRun {
		if err := preview(stdout, *cfgPath, *prefix, *sysfsRoot); err != nil {
			fmt.Fprintf(stderr, "berth-sriov-dp: %v\n", err)
			return 1
		}
		return 0
	}
	m, err := manager.New(manager.Options{
		ConfigPath: *cfgPath, DefaultPrefix: *prefix, SysfsRoot: *sysfsRoot, PluginDir: *pluginDir,
		PollInterval: *poll, DeviceInfoDir: *devInfoDir, Logger: log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "berth-sriov-dp: invalid configuration: %v\n", err)
		return 1
	}
	log.Info("starting", "config", *cfgPath, "sysfs", *sysfsRoot, "devicePluginDir", *pluginDir, "deviceInfoDir", *devInfoDir, "resources", m.Resources())
	if err := m.Run(ctx); err != nil {
		log.Error("device plugin failed", "error", err)
		return 1
	}
	return 0
}

func preview(w io.Writer, cfgPath, prefix, root string) error {
	cfg, err := config.Load(cfgPath, prefix)
	if err != nil {
		return err
	}
	snap, err := sysfs.NewReader(root).Discover()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tVF\tPF\tINDEX\tDRIVER\tNUMA\tHEALTH")
	for _, s := range manager.Preview(cfg, snap) {
		if len(s.VFs) == 0 {
			fmt.Fprintf(tw, "%s\t(selects no VF)\t\t\t\t\t\n", s.Resource.FullName())
		}
		for _, vf := range s.VFs {
			health := "Healthy"
			if !vf.Health.Healthy {
				health = "Unhealthy: " + vf.Health.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.Resource.FullName(), vf.Address, vf.PFName, vf.Index, vf.Driver, vf.NUMANode, health)
		}
	}
	return tw.Flush()
}
