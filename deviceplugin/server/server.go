// Package server is the kubelet device plugin of one SR-IOV resource: a gRPC
// server on a unix socket in the kubelet's device plugin directory that
// registers with the kubelet, streams the resource's VFs with their health
// (ListAndWatch), answers Allocate with the PCIDEVICE_* environment and the
// vfio and RDMA device nodes, and prefers allocations that keep NUMA
// locality and spread over PFs.
//
// The Server does not scan sysfs: its owner calls Update with the selected
// VFs after every scan, and Start, Stop and Register as the kubelet comes and
// goes (package manager).
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-io/berth/deviceplugin/config"
	"github.com/berth-io/berth/deviceplugin/sysfs"
)

// DefaultPluginDir is where the kubelet looks for device plugin sockets.
const DefaultPluginDir = pluginapi.DevicePluginPath

// KubeletSocketName is the kubelet's registration socket in the plugin dir.
const KubeletSocketName = "kubelet.sock"

// Options configure a Server.
type Options struct {
	Resource config.Resource
	// PluginDir is the kubelet's device plugin directory: the plugin's
	// socket is created there and kubelet.sock is dialled there.
	PluginDir string
	// Logger receives health changes and lifecycle events; nil discards.
	Logger *slog.Logger
}

// Server serves one resource. Its device list survives Stop and Start, so a
// restart after the kubelet's does not forget VFs that went missing.
type Server struct {
	res      config.Resource
	name     string // prefix/name
	envName  string
	dir      string
	endpoint string // socket file name, what Register tells the kubelet
	log      *slog.Logger

	mu      sync.Mutex
	devices map[string]*device
	changed chan struct{} // closed and replaced when the device list changes
	run     *run          // nil when stopped
}

// device is one VF as advertised.
type device struct {
	vf     sysfs.VF
	gone   bool // no longer selected: advertised Unhealthy
	health string
	reason string
}

// run is one Start..Stop of the gRPC server.
type run struct {
	cancel context.CancelFunc
	grpc   *grpc.Server
	done   chan struct{} // closed when Serve returned
	inode  fileID        // of the socket file this run created
}

// New returns a stopped Server for opts.Resource.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := opts.Resource
	s := &Server{
		res:     r,
		name:    r.FullName(),
		envName: EnvName(r),
		dir:     opts.PluginDir,
		log:     log.With("resource", r.FullName()),
		devices: map[string]*device{},
		changed: make(chan struct{}),
	}
	s.endpoint = endpoint(opts.PluginDir, r)
	return s
}

// EnvName is the variable Allocate sets to the allocated PCI addresses:
// PCIDEVICE_<PREFIX>_<NAME>, upper case, every other character than a
// letter or digit turned into '_' (the SR-IOV network device plugin's name,
// which the SR-IOV CNI, Multus and DPDK applications read).
func EnvName(r config.Resource) string {
	return "PCIDEVICE_" + strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z':
			return c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			return c
		}
		return '_'
	}, r.Prefix+"_"+r.Name)
}

// maxSocketPath is the longest path a unix socket address holds
// (sun_path is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// endpoint names the socket file: berth-<prefix>_<name>.sock, hashed when
// the path would not fit in a socket address.
func endpoint(dir string, r config.Resource) string {
	base := "berth-" + strings.ReplaceAll(r.FullName(), "/", "_")
	if len(filepath.Join(dir, base+".sock")) <= maxSocketPath {
		return base + ".sock"
	}
	sum := sha256.Sum256([]byte(r.FullName()))
	short := "berth-" + hex.EncodeToString(sum[:8]) + ".sock"
	return short
}

// ResourceName is the extended resource name, prefix/name.
func (s *Server) ResourceName() string { return s.name }

// Resource is the configuration the Server serves.
func (s *Server) Resource() config.Resource { return s.res }

// SocketPath is where the Server listens.
func (s *Server) SocketPath() string { return filepath.Join(s.dir, s.endpoint) }

// Start listens on the socket (replacing a stale file) and serves until
// Stop. Starting a started Server is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return fmt.Errorf("starting device plugin %s: already started", s.name)
	}
	path := s.SocketPath()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket of device plugin %s: %w", s.name, err)
	}
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listening for device plugin %s: %w", s.name, err)
	}
	// Closing would unlink whatever file has the name by then, possibly a
	// newer plugin's socket: Stop removes the file only if it is ours.
	lis.SetUnlinkOnClose(false)
	inode, err := inodeOf(path)
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("device plugin %s: %w", s.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, grpc: grpc.NewServer(), done: make(chan struct{}), inode: inode}
	pluginapi.RegisterDevicePluginServer(r.grpc, &service{s: s, ctx: ctx})
	go func() {
		defer close(r.done)
		// Serve returns when Stop stops the gRPC server; any other return is
		// a dead listener, which Serving reports so the owner restarts us.
		if err := r.grpc.Serve(lis); err != nil {
			s.log.Error("device plugin server stopped", "error", err)
		}
	}()
	s.run = r
	s.log.Info("device plugin serving", "socket", path)
	return nil
}

// stopGrace bounds how long Stop lets in-flight calls finish.
const stopGrace = 5 * time.Second

// Stop ends the streams, stops serving and removes the socket if it is still
// the one Start created (the kubelet may have replaced the directory's
// content). Stopping a stopped Server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel() // ListAndWatch streams return, so GracefulStop can finish
	stopped := make(chan struct{})
	go func() {
		r.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(stopGrace)
	select {
	case <-stopped:
		timer.Stop()
	case <-timer.C:
		r.grpc.Stop()
		<-stopped
	}
	<-r.done
	if ino, err := inodeOf(s.SocketPath()); err == nil && ino == r.inode {
		if err := os.Remove(s.SocketPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("removing device plugin socket", "error", err)
		}
	}
	s.log.Info("device plugin stopped")
}

// Serving reports whether the Server is started and its socket file is still
// the one it listens on. The kubelet deletes every socket in its directory
// when it starts; a Server whose socket is gone must be restarted.
func (s *Server) Serving() bool {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
	}
	ino, err := inodeOf(s.SocketPath())
	return err == nil && ino == r.inode
}

// fileID identifies a socket file. The inode alone is not enough: tmpfs
// gives a deleted file's inode number to the next file created.
type fileID struct {
	ino   uint64
	ctime syscall.Timespec
}

func inodeOf(path string) (fileID, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&fs.ModeSocket == 0 {
		return fileID{}, fmt.Errorf("%s is not a socket", path)
	}
	return fileID{ino: st.Ino, ctime: st.Ctim}, nil
}

// Register tells the kubelet listening on kubeletSocket about this Server;
// the kubelet then dials the Server's socket and calls ListAndWatch.
func (s *Server) Register(ctx context.Context, kubeletSocket string) error {
	conn, err := grpc.NewClient("unix://"+kubeletSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("registering %s with the kubelet at %s: %w", s.name, kubeletSocket, err)
	}
	defer conn.Close()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     s.endpoint,
		ResourceName: s.name,
		Options:      options(),
	})
	if err != nil {
		return fmt.Errorf("registering %s with the kubelet at %s: %w", s.name, kubeletSocket, err)
	}
	s.log.Info("registered with the kubelet", "kubelet", kubeletSocket)
	return nil
}

func options() *pluginapi.DevicePluginOptions {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}
}

// Update replaces the resource's VFs with a scan's selection. VFs no longer
// selected stay advertised as Unhealthy, so the kubelet stops placing pods
// on them and sees the capacity drop; they come back if they reappear. It
// reports whether the advertised list changed (and was streamed).
func (s *Server) Update(vfs []sysfs.VF) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	seen := make(map[string]bool, len(vfs))
	for _, vf := range vfs {
		seen[vf.Address] = true
		health, reason := pluginapi.Healthy, ""
		if !vf.Health.Healthy {
			health, reason = pluginapi.Unhealthy, vf.Health.Reason
		}
		old, ok := s.devices[vf.Address]
		if ok && !old.gone && old.health == health && old.vf.NUMANode == vf.NUMANode {
			old.vf, old.reason = vf, reason // driver details may change; not advertised
			continue
		}
		changed = true
		s.devices[vf.Address] = &device{vf: vf, health: health, reason: reason}
		switch {
		case !ok:
			s.log.Debug("VF added", "vf", vf.Address, "health", health)
		case health != old.health || old.gone:
			s.log.Info("VF health changed", "vf", vf.Address, "health", health, "reason", reason)
		}
	}
	for addr, d := range s.devices {
		if seen[addr] || d.gone {
			continue
		}
		changed = true
		d.gone, d.health, d.reason = true, pluginapi.Unhealthy, "no longer present or selected"
		s.log.Info("VF health changed", "vf", addr, "health", d.health, "reason", d.reason)
	}
	if changed {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return changed
}

// Devices is the list ListAndWatch streams now, ordered by PCI address.
func (s *Server) Devices() []*pluginapi.Device {
	devs, _ := s.snapshot()
	return devs
}

func (s *Server) snapshot() ([]*pluginapi.Device, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pluginapi.Device, 0, len(s.devices))
	for id, d := range s.devices {
		dev := &pluginapi.Device{ID: id, Health: d.health}
		if !s.res.ExcludeTopology && d.vf.NUMANode >= 0 {
			dev.Topology = &pluginapi.TopologyInfo{Nodes: []*pluginapi.NUMANode{{ID: int64(d.vf.NUMANode)}}}
		}
		out = append(out, dev)
	}
	slices.SortFunc(out, func(a, b *pluginapi.Device) int { return strings.Compare(a.ID, b.ID) })
	return out, s.changed
}
