// Package kubelettest is a stand-in kubelet for device plugin tests and the
// demo: a real gRPC peer on a unix socket that serves the Registration API,
// then dials each registered plugin like the kubelet's device manager does,
// follows its ListAndWatch stream and can call Allocate and
// GetPreferredAllocation on it. Restart behaves as a kubelet restart: every
// socket in the directory is deleted and kubelet.sock is created again.
package kubelettest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// SocketName is the registration socket's name in the plugin directory.
const SocketName = "kubelet.sock"

// dialTimeout bounds the kubelet's calls to a plugin during registration.
const dialTimeout = 5 * time.Second

// Kubelet is the stand-in. All methods are safe for concurrent use.
type Kubelet struct {
	dir string

	mu      sync.Mutex
	grpc    *grpc.Server
	served  chan struct{}
	plugins map[string]*plugin
	regs    map[string]int
	changed chan struct{} // closed and replaced on every registration or device update
	wg      sync.WaitGroup
}

// plugin is a registered device plugin as the kubelet sees it.
type plugin struct {
	endpoint string
	options  *pluginapi.DevicePluginOptions
	conn     *grpc.ClientConn
	client   pluginapi.DevicePluginClient
	cancel   context.CancelFunc
	devices  []*pluginapi.Device
	updates  int
	streamed bool // ListAndWatch is open
}

// Start serves the Registration API on <dir>/kubelet.sock.
func Start(dir string) (*Kubelet, error) {
	k := &Kubelet{dir: dir, plugins: map[string]*plugin{}, regs: map[string]int{}, changed: make(chan struct{})}
	if err := k.serve(); err != nil {
		return nil, err
	}
	return k, nil
}

// SocketPath is the kubelet's registration socket.
func (k *Kubelet) SocketPath() string { return filepath.Join(k.dir, SocketName) }

func (k *Kubelet) serve() error {
	if err := os.Remove(k.SocketPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale kubelet socket: %w", err)
	}
	lis, err := net.Listen("unix", k.SocketPath())
	if err != nil {
		return fmt.Errorf("test kubelet: listening: %w", err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, &registration{k: k})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns when stopped
	}()
	k.mu.Lock()
	k.grpc, k.served = srv, served
	k.mu.Unlock()
	return nil
}

// Stop stops serving, hangs up on every plugin and removes kubelet.sock.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	srv, served := k.grpc, k.served
	k.grpc = nil
	plugins := k.plugins
	k.plugins = map[string]*plugin{}
	k.mu.Unlock()
	for _, p := range plugins {
		p.cancel()
		_ = p.conn.Close()
	}
	if srv != nil {
		srv.Stop()
		<-served
	}
	k.wg.Wait()
	_ = os.Remove(k.SocketPath())
	k.notify()
}

// Restart is a kubelet restart: stop, delete every socket in the directory
// (the device manager does so on start, forcing plugins to come back), and
// serve a new kubelet.sock.
func (k *Kubelet) Restart() error {
	k.Stop()
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return fmt.Errorf("test kubelet: listing %s: %w", k.dir, err)
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSocket != 0 {
			if err := os.Remove(filepath.Join(k.dir, e.Name())); err != nil {
				return fmt.Errorf("test kubelet: removing %s: %w", e.Name(), err)
			}
		}
	}
	return k.serve()
}

type registration struct {
	pluginapi.UnimplementedRegistrationServer
	k *Kubelet
}

// An extended resource name as the kubelet accepts it: a domain outside
// kubernetes.io, '/', and a name part of a qualified name.
var extendedName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

func (r *registration) Register(ctx context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k := r.k
	switch {
	case !slices.Contains(pluginapi.SupportedVersions[:], req.GetVersion()):
		return nil, fmt.Errorf("unsupported device plugin API version %q", req.GetVersion())
	case !extendedName.MatchString(req.GetResourceName()) || strings.Contains(req.GetResourceName(), "kubernetes.io/"):
		return nil, fmt.Errorf("invalid extended resource name %q", req.GetResourceName())
	case req.GetEndpoint() == "" || strings.Contains(req.GetEndpoint(), "/"):
		return nil, fmt.Errorf("invalid endpoint %q: a file name in %s", req.GetEndpoint(), k.dir)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(k.dir, req.GetEndpoint()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dialling plugin %s: %w", req.GetResourceName(), err)
	}
	client := pluginapi.NewDevicePluginClient(conn)
	octx, cancel := context.WithTimeout(ctx, dialTimeout)
	opts, err := client.GetDevicePluginOptions(octx, &pluginapi.Empty{}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("calling GetDevicePluginOptions of %s: %w", req.GetResourceName(), err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	stream, err := client.ListAndWatch(sctx, &pluginapi.Empty{})
	if err != nil {
		scancel()
		_ = conn.Close()
		return nil, fmt.Errorf("calling ListAndWatch of %s: %w", req.GetResourceName(), err)
	}
	p := &plugin{endpoint: req.GetEndpoint(), options: opts, conn: conn, client: client, cancel: scancel, streamed: true}
	k.mu.Lock()
	if k.grpc == nil { // stopped while we dialled
		k.mu.Unlock()
		scancel()
		_ = conn.Close()
		return nil, errors.New("kubelet is stopping")
	}
	// A new registration replaces the previous endpoint of the resource.
	if old := k.plugins[req.GetResourceName()]; old != nil {
		old.cancel()
		_ = old.conn.Close()
	}
	k.plugins[req.GetResourceName()] = p
	k.regs[req.GetResourceName()]++
	k.wg.Add(1)
	k.mu.Unlock()
	k.notify()
	go k.watch(req.GetResourceName(), p, stream)
	return &pluginapi.Empty{}, nil
}

// watch follows one plugin's ListAndWatch stream until it ends.
func (k *Kubelet) watch(resource string, p *plugin, stream grpc.ServerStreamingClient[pluginapi.ListAndWatchResponse]) {
	defer k.wg.Done()
	for {
		resp, err := stream.Recv()
		k.mu.Lock()
		if err != nil {
			p.streamed = false
		} else {
			p.devices = resp.GetDevices()
			p.updates++
		}
		k.mu.Unlock()
		k.notify()
		if err != nil {
			return
		}
	}
}

func (k *Kubelet) notify() {
	k.mu.Lock()
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
}

// State is what the kubelet knows of one resource.
type State struct {
	Registrations int // how many times the resource registered
	Connected     bool
	Options       *pluginapi.DevicePluginOptions
	Devices       []*pluginapi.Device // the last list streamed
	Updates       int                 // lists received on the current stream
}

// Healthy counts the healthy devices: the node's capacity for the resource.
func (s State) Healthy() int {
	n := 0
	for _, d := range s.Devices {
		if d.GetHealth() == pluginapi.Healthy {
			n++
		}
	}
	return n
}

// State returns what the kubelet knows of resource.
func (k *Kubelet) State(resource string) State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stateLocked(resource)
}

func (k *Kubelet) stateLocked(resource string) State {
	st := State{Registrations: k.regs[resource]}
	if p := k.plugins[resource]; p != nil {
		st.Connected, st.Options, st.Devices, st.Updates = p.streamed, p.options, p.devices, p.updates
	}
	return st
}

// Resources lists the resources with a live ListAndWatch stream.
func (k *Kubelet) Resources() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for r, p := range k.plugins {
		if p.streamed {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Wait blocks until cond holds for the resource's state, and returns it.
func (k *Kubelet) Wait(ctx context.Context, resource string, cond func(State) bool) (State, error) {
	for {
		k.mu.Lock()
		st, changed := k.stateLocked(resource), k.changed
		k.mu.Unlock()
		if cond(st) {
			return st, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, fmt.Errorf("waiting for resource %s (last state: %d registrations, connected %v, %d devices): %w",
				resource, st.Registrations, st.Connected, len(st.Devices), ctx.Err())
		}
	}
}

// Allocate calls the resource's plugin as the kubelet does when a container
// starts, with one device list per container.
func (k *Kubelet) Allocate(ctx context.Context, resource string, containers ...[]string) (*pluginapi.AllocateResponse, error) {
	c, err := k.client(resource)
	if err != nil {
		return nil, err
	}
	req := &pluginapi.AllocateRequest{}
	for _, ids := range containers {
		req.ContainerRequests = append(req.ContainerRequests, &pluginapi.ContainerAllocateRequest{DevicesIds: ids})
	}
	return c.Allocate(ctx, req)
}

// PreferredAllocation asks the resource's plugin which devices it prefers.
func (k *Kubelet) PreferredAllocation(ctx context.Context, resource string, available, mustInclude []string, size int) ([]string, error) {
	c, err := k.client(resource)
	if err != nil {
		return nil, err
	}
	resp, err := c.GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
		AvailableDeviceIDs: available, MustIncludeDeviceIDs: mustInclude, AllocationSize: int32(size),
	}}})
	if err != nil {
		return nil, err
	}
	if n := len(resp.GetContainerResponses()); n != 1 {
		return nil, fmt.Errorf("plugin of %s answered %d container preferences for 1 request", resource, n)
	}
	return resp.GetContainerResponses()[0].GetDeviceIDs(), nil
}

func (k *Kubelet) client(resource string) (pluginapi.DevicePluginClient, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.plugins[resource]
	if p == nil {
		return nil, fmt.Errorf("no plugin registered for %s", resource)
	}
	return p.client, nil
}
