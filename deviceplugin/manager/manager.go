// Package manager runs berth-sriov-dp: one server.Server per configured
// resource, a sysfs poll that feeds them their VFs and health, a watch on
// the kubelet's directory that registers again when the kubelet restarts,
// and a watch on the configuration file that adds, removes and restarts
// servers when it changes.
//
// Everything happens on the goroutine of Run, so the manager's state needs
// no lock; the servers' own goroutines end with Stop.
package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/selector"
	"github.com/berth-io/berth/deviceplugin/server"
	"github.com/berth-io/berth/deviceplugin/sysfs"
)

// Defaults of Options.
const (
	DefaultPollInterval    = 5 * time.Second
	DefaultRegisterTimeout = 10 * time.Second
)

// Options configure a Manager. ConfigPath is required; the rest default.
type Options struct {
	ConfigPath    string
	DefaultPrefix string // resourcePrefix of entries without one
	SysfsRoot     string // default sysfs.DefaultRoot
	PluginDir     string // default server.DefaultPluginDir
	// PollInterval is how often sysfs is scanned for VFs and their health.
	PollInterval    time.Duration
	RegisterTimeout time.Duration
	// DeviceInfoDir gets a Device Information file per selected VF
	// (devinfo.DefaultDir on a node, where Multus reads them); empty writes
	// none.
	DeviceInfoDir string
	Logger        *slog.Logger
}

// Manager owns the servers of the configured resources.
type Manager struct {
	opts   Options
	reader *sysfs.Reader
	log    *slog.Logger

	cfgData   []byte
	resources []*resource // in configuration order
}

type resource struct {
	srv        *server.Server
	sel        *selector.Resource
	info       *devinfo.Files // nil without Options.DeviceInfoDir
	registered bool
	failing    bool // the last registration failed (logged once)
	selected   int  // VFs selected by the last scan; -1 before the first
}

// New reads and validates the configuration; an invalid one is an error
// that names the entry and field, for the command to exit with.
func New(opts Options) (*Manager, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("no configuration file given")
	}
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = sysfs.DefaultRoot
	}
	if opts.PluginDir == "" {
		opts.PluginDir = server.DefaultPluginDir
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RegisterTimeout <= 0 {
		opts.RegisterTimeout = DefaultRegisterTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, reader: sysfs.NewReader(opts.SysfsRoot), log: opts.Logger}
	data, err := os.ReadFile(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("reading device plugin configuration: %w", err)
	}
	cfg, err := config.Parse(data, opts.DefaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.ConfigPath, err)
	}
	m.cfgData = data
	for _, r := range cfg.Resources {
		m.resources = append(m.resources, m.newResource(r))
	}
	if len(cfg.Resources) == 0 {
		m.log.Warn("the configuration defines no resource: nothing will be advertised", "config", opts.ConfigPath)
	}
	return m, nil
}

func (m *Manager) newResource(r config.Resource) *resource {
	res := &resource{
		srv:      server.New(server.Options{Resource: r, PluginDir: m.opts.PluginDir, Logger: m.log}),
		sel:      selector.ForResource(r),
		selected: -1,
	}
	if m.opts.DeviceInfoDir != "" {
		res.info = devinfo.New(m.opts.DeviceInfoDir, r.FullName())
	}
	return res
}

// stop stops a resource's server and removes its device information files.
func (m *Manager) stop(r *resource) {
	r.srv.Stop()
	if r.info != nil {
		if err := r.info.Clear(); err != nil {
			m.log.Error("removing device information files", "resource", r.srv.ResourceName(), "error", err)
		}
	}
}

// Resources are the extended resource names being served, in
// configuration order.
func (m *Manager) Resources() []string {
	names := make([]string, len(m.resources))
	for i, r := range m.resources {
		names[i] = r.srv.ResourceName()
	}
	return names
}

func (m *Manager) kubeletSocket() string {
	return filepath.Join(m.opts.PluginDir, server.KubeletSocketName)
}

// Run serves until ctx ends, then stops every server and returns nil; it
// returns an error only if it cannot start (no plugin directory to watch).
func (m *Manager) Run(ctx context.Context) error {
	if err := os.MkdirAll(m.opts.PluginDir, 0o750); err != nil {
		return fmt.Errorf("creating the device plugin directory: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching for kubelet restarts: %w", err)
	}
	defer w.Close()
	// The directory, not the file: ConfigMap volumes replace a symlink and
	// editors rename over the file, and the file's own watch dies with it.
	cfgDir := filepath.Dir(m.opts.ConfigPath)
	for _, d := range []string{m.opts.PluginDir, cfgDir} {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watching %s: %w", d, err)
		}
	}
	defer m.stopAll()

	m.scan()
	m.restartDead()
	m.register(ctx, false)
	ticker := time.NewTicker(m.opts.PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			m.scan()
			m.restartDead()
			m.register(ctx, false)
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			m.handle(ctx, ev, cfgDir)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			// Overflowed events: a scan and a check of every socket cover
			// whatever was missed.
			m.log.Warn("file watch error; checking everything", "error", err)
			m.reload(ctx)
			m.restartDead()
			m.register(ctx, true)
		}
	}
}

func (m *Manager) handle(ctx context.Context, ev fsnotify.Event, cfgDir string) {
	dir, name := filepath.Split(ev.Name)
	switch filepath.Clean(dir) {
	case filepath.Clean(m.opts.PluginDir):
		if name == server.KubeletSocketName && ev.Has(fsnotify.Create) {
			// A new kubelet, which knows no plugin: every resource registers.
			m.log.Info("kubelet socket created: registering")
			m.restartDead()
			m.register(ctx, true)
			return
		}
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			// One of our sockets may be gone. Registering waits for the
			// kubelet.sock that a restarting kubelet creates next.
			m.restartDead()
		}
	case filepath.Clean(cfgDir):
		m.reload(ctx)
	}
}

// restartDead restarts servers whose socket is gone: the kubelet deletes
// every socket in its directory when it starts. A restarted server must
// register again.
func (m *Manager) restartDead() {
	for _, r := range m.resources {
		if r.srv.Serving() {
			continue
		}
		r.srv.Stop()
		r.registered = false
		if err := r.srv.Start(); err != nil {
			m.log.Error("starting device plugin", "resource", r.srv.ResourceName(), "error", err)
		}
	}
}

// register registers the serving servers that are not registered, or all
// of them (a new kubelet knows none).
func (m *Manager) register(ctx context.Context, all bool) {
	for _, r := range m.resources {
		if (r.registered && !all) || !r.srv.Serving() {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, m.opts.RegisterTimeout)
		err := r.srv.Register(rctx, m.kubeletSocket())
		cancel()
		r.registered = err == nil
		switch {
		case err == nil:
		case !r.failing:
			// Retried on every poll and when kubelet.sock appears; said once.
			m.log.Warn("registration failed; retrying on every poll and when the kubelet socket appears",
				"resource", r.srv.ResourceName(), "error", err)
		default:
			m.log.Debug("registration failed", "resource", r.srv.ResourceName(), "error", err)
		}
		r.failing = err != nil
	}
}

// scan reads sysfs once and gives each server its selection.
func (m *Manager) scan() {
	snap, err := m.reader.Discover()
	if err != nil {
		m.log.Error("scanning sysfs; keeping the last device lists", "error", err)
		return
	}
	for _, r := range m.resources {
		vfs := r.sel.Select(snap.VFs)
		r.srv.Update(vfs)
		if r.info != nil {
			if err := r.info.Sync(vfs); err != nil {
				m.log.Error("writing device information files; Multus cannot report these VFs' PCI addresses", "resource", r.srv.ResourceName(), "error", err)
			}
		}
		switch n := len(vfs); {
		case n == 0 && r.selected != 0:
			m.log.Warn("resource selects no VF: check its selectors against the node's NICs",
				"resource", r.srv.ResourceName(), "index", r.srv.Resource().Index, "vfsOnNode", len(snap.VFs))
		case n > 0 && n != r.selected:
			m.log.Info("resource selects VFs", "resource", r.srv.ResourceName(), "vfs", n)
		}
		r.selected = len(vfs)
	}
}

// reload applies a changed configuration file: new resources start,
// removed ones stop, changed ones restart (a new registration gives the
// kubelet the new list whole). An invalid file is logged and ignored: the
// running resources keep serving.
func (m *Manager) reload(ctx context.Context) {
	data, err := os.ReadFile(m.opts.ConfigPath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) { // mid-swap of a ConfigMap
			m.log.Error("reading the configuration; keeping the running one", "error", err)
		}
		return
	}
	if bytes.Equal(data, m.cfgData) {
		return
	}
	cfg, err := config.Parse(data, m.opts.DefaultPrefix)
	if err != nil {
		m.log.Error("the new configuration is invalid; keeping the running one", "config", m.opts.ConfigPath, "error", err)
		return
	}
	m.cfgData = data
	old := map[string]*resource{}
	for _, r := range m.resources {
		old[r.srv.ResourceName()] = r
	}
	next := make([]*resource, 0, len(cfg.Resources))
	for _, rc := range cfg.Resources {
		r, ok := old[rc.FullName()]
		delete(old, rc.FullName())
		if ok && sameResource(r.srv.Resource(), rc) {
			next = append(next, r)
			continue
		}
		if ok {
			m.log.Info("resource changed: restarting it", "resource", rc.FullName())
			m.stop(r)
		} else {
			m.log.Info("resource added", "resource", rc.FullName())
		}
		next = append(next, m.newResource(rc))
	}
	for name, r := range old {
		m.log.Info("resource removed", "resource", name)
		m.stop(r)
	}
	m.resources = next
	m.scan()
	m.restartDead()
	m.register(ctx, false)
}

// sameResource compares two entries regardless of their place in the list.
func sameResource(a, b config.Resource) bool {
	a.Index, b.Index = 0, 0
	return reflect.DeepEqual(a, b)
}

func (m *Manager) stopAll() {
	for _, r := range m.resources {
		m.stop(r)
	}
}

// Selection is what a resource selects on a node.
type Selection struct {
	Resource config.Resource
	VFs      []sysfs.VF
}

// Preview selects the VFs of every resource of cfg in snap, for a dry run.
func Preview(cfg *config.Config, snap *sysfs.Snapshot) []Selection {
	out := make([]Selection, 0, len(cfg.Resources))
	for _, r := range cfg.Resources {
		out = append(out, Selection{Resource: r, VFs: selector.ForResource(r).Select(snap.VFs)})
	}
	return out
}
