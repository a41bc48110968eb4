package kubelettest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// The stand-in refuses what the kubelet refuses, so plugin tests cannot
// pass on a registration a real kubelet would reject.
func TestRegisterValidates(t *testing.T) {
	dir, err := os.MkdirTemp("", "kt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	k, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	conn, err := grpc.NewClient("unix://"+k.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pluginapi.NewRegistrationClient(conn)
	for _, tc := range []struct {
		name string
		req  *pluginapi.RegisterRequest
		want string
	}{
		{"old version", &pluginapi.RegisterRequest{Version: "v1alpha", Endpoint: "p.sock", ResourceName: "berth.io/a"}, `unsupported device plugin API version "v1alpha"`},
		{"native resource", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "p.sock", ResourceName: "kubernetes.io/a"}, "invalid extended resource name"},
		{"no domain", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "p.sock", ResourceName: "sriov"}, "invalid extended resource name"},
		{"endpoint path", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "../p.sock", ResourceName: "berth.io/a"}, `invalid endpoint "../p.sock"`},
		{"nobody listening", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "p.sock", ResourceName: "berth.io/a"}, "calling GetDevicePluginOptions of berth.io/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Register(ctx, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if st := k.State("berth.io/a"); st.Registrations != 0 || st.Connected {
		t.Errorf("a refused registration left state %+v", st)
	}
}

func TestRestartDeletesSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "kt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	k, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	lis, err := net.Listen("unix", filepath.Join(dir, "plugin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if err := os.WriteFile(filepath.Join(dir, "kubelet_internal_checkpoint"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "plugin.sock")); !os.IsNotExist(err) {
		t.Errorf("plugin socket survived the restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubelet_internal_checkpoint")); err != nil {
		t.Errorf("the checkpoint is not a socket and must stay: %v", err)
	}
	// The new kubelet.sock answers (the inode number may be the old one's).
	conn, err := grpc.NewClient("unix://"+k.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{Version: "v0"})
	if err == nil || !strings.Contains(err.Error(), "unsupported device plugin API version") {
		t.Errorf("the restarted kubelet does not answer: %v", err)
	}
}
