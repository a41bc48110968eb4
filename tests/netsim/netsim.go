// Package netsim builds simulated networks out of network namespaces for
// tests and the demo: named namespaces a test creates and removes, an
// underlay segment (a gateway namespace with a bridge, node namespaces
// joined to it by veths whose node ends are macvlan masters), and a libcni
// executor that runs CNI plugins inside a node namespace as if it were the
// node's root namespace.
package netsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
)

// RequireRoot stops a test that needs root and the ip tool: in CI it fails,
// elsewhere it skips saying what is missing.
func RequireRoot(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces, veths and routes need CAP_NET_ADMIN)")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (Debian packages iproute2, iputils-ping)")
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("network namespace tests need %s", strings.Join(missing, ", "))
	}
	t.Skipf("network namespace tests need %s", strings.Join(missing, ", "))
}

// NS is a named network namespace (/run/netns/<Name>).
type NS struct {
	Name string
	Path string
}

// NewNS creates a namespace named prefix-<random> with its loopback up.
// It is removed when the test ends.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	n, err := CreateNS(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Delete(); err != nil {
			t.Errorf("removing netns %s: %v", n.Name, err)
		}
	})
	return n
}

// CreateNS creates a namespace named prefix-<random> with its loopback up;
// the caller deletes it.
func CreateNS(ctx context.Context, prefix string) (*NS, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("naming a netns: %w", err)
	}
	n := &NS{Name: prefix + "-" + hex.EncodeToString(b)}
	n.Path = filepath.Join("/run/netns", n.Name)
	if _, err := run(ctx, "ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	if _, err := n.Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		_ = n.Delete()
		return nil, err
	}
	return n, nil
}

// Delete removes the namespace; links inside go with it. Deleting it
// twice is no error.
func (n *NS) Delete() error {
	if _, err := os.Stat(n.Path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := run(ctx, "ip", "netns", "delete", n.Name)
	return err
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs f with the calling goroutine's thread inside the namespace.
func (n *NS) Do(f func() error) error {
	return ns.WithNetNSPath(n.Path, func(ns.NetNS) error { return f() })
}

// Ping sends count pings to addr from inside the namespace.
func (n *NS) Ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := n.Run(ctx, "ping", "-c", "1", "-W", "2", addr)
	return err
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PluginExec is a libcni invoke.Exec that runs each plugin with its
// process in the namespace NS: the plugin sees that namespace as the host
// (the node), as it would see the root namespace on a real node.
type PluginExec struct {
	NS     *NS
	Stderr io.Writer
}

var _ invoke.Exec = &PluginExec{}

// ExecPlugin forks the plugin from a thread switched into NS: a child
// process inherits the network namespace of the thread that forks it.
func (e *PluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	raw := &invoke.RawExec{Stderr: e.Stderr}
	if raw.Stderr == nil {
		raw.Stderr = os.Stderr
	}
	var out []byte
	err := ns.WithNetNSPath(e.NS.Path, func(ns.NetNS) error {
		var err error
		out, err = raw.ExecPlugin(ctx, pluginPath, stdinData, environ)
		return err
	})
	return out, err
}

// FindInPath finds the plugin binary.
func (e *PluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// Decode reads a VERSION answer.
func (e *PluginExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	d := &version.PluginDecoder{}
	return d.Decode(jsonBytes)
}
