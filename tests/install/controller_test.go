package install

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/tests/controlplane"
)

var (
	buildOnce sync.Once
	builtDir  string // removed by TestMain
	built     string
	buildErr  error
)

// controllerBinary builds cmd/berth-controller once per package, so the
// binary under test is the source under test.
func controllerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "berth-install-bin-")
		if buildErr != nil {
			return
		}
		built = filepath.Join(builtDir, "berth-controller")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", built, "./cmd/berth-controller")
		cmd.Dir = repo(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building berth-controller: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// running is berth-controller started from an installed Deployment.
type running struct {
	ns         string
	args       []string // the Deployment's
	cmdline    []string // args and where it listens
	kubeconfig string
	logPath    string
	probeURL   string
	// stop ends the process; nil while it is not running.
	stop func()
}

// runInstalled starts berth-controller the way the Deployment berth-controller
// in ns would start it: its arguments with $(VAR) expanded from the
// container's env, and its ServiceAccount's identity. Only the listen
// addresses change (a free port on the host address, which an EndpointSlice
// of the berth-webhook Service names). It returns once /readyz answers.
func runInstalled(t *testing.T, ns string) *running {
	t.Helper()
	ctx := ctxFor(t, 3*time.Minute)
	var dep appsv1.Deployment
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "berth-controller"}, &dep); err != nil {
		t.Fatalf("the install made no Deployment berth-controller in %s: %v", ns, err)
	}
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("Deployment berth-controller has %d containers, want 1", len(spec.Containers))
	}
	args, err := expandArgs(spec.Containers[0], ns)
	if err != nil {
		t.Fatalf("Deployment berth-controller: %v", err)
	}
	sa := spec.ServiceAccountName
	if sa == "" {
		t.Fatal("Deployment berth-controller names no serviceAccountName")
	}

	var svc corev1.Service
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "berth-webhook"}, &svc); err != nil {
		t.Fatalf("the install made no Service berth-webhook: %v", err)
	}
	portName := ""
	for _, p := range svc.Spec.Ports {
		if p.Port == 443 {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("Service berth-webhook has no port 443 named: %+v", svc.Spec.Ports)
	}

	ip := hostIPv4(t)
	webhookPort := freePort(t, ip)
	probePort := freePort(t, "127.0.0.1")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "berth-webhook-under-test", Labels: map[string]string{
			discoveryv1.LabelServiceName: "berth-webhook",
			discoveryv1.LabelManagedBy:   "berth-install-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(int32(webhookPort)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := cp.Client.Create(ctx, slice); err != nil {
		t.Fatalf("creating the EndpointSlice of berth-webhook: %v", err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), slice) })

	dir := t.TempDir()
	r := &running{
		ns: ns, args: args,
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		logPath:    filepath.Join(dir, "berth-controller.log"),
		probeURL:   "http://127.0.0.1:" + strconv.Itoa(probePort) + "/readyz",
		// Later flags win: only where it listens differs from the Deployment.
		cmdline: append(append([]string{}, args...),
			"--webhook-host="+ip, "--webhook-port="+strconv.Itoa(webhookPort),
			"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(probePort),
			"--cert-dir="+filepath.Join(dir, "certs")),
	}
	user, groups := controlplane.ServiceAccountUser(ns, sa)
	if err := cp.WriteKubeconfigAs(r.kubeconfig, user, groups...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
		if t.Failed() {
			if denied := r.forbidden(); len(denied) > 0 {
				t.Logf("the API server refused berth-controller (shipped RBAC too narrow?):\n%s", strings.Join(denied, "\n"))
			}
			t.Logf("berth-controller %s log:\n%s", strings.Join(r.cmdline, " "), tailFile(r.logPath, 60))
		}
	})
	r.start(t)
	return r
}

// start runs the process (again), appending to its log, and waits until
// it is ready.
func (r *running) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(controllerBinary(t), r.cmdline...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+r.kubeconfig)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); logf.Close(); close(exited) }()
	r.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		r.stop = nil
	}
	err = wait.PollUntilContextTimeout(ctxFor(t, 3*time.Minute), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("berth-controller exited: %v", waitErr)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.probeURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("berth-controller started as the installed Deployment never became ready: %v\n%s", err, tailFile(r.logPath, 60))
	}
}

// forbidden returns the log lines where the API server's authorizer refused
// the controller something: a gap in the shipped RBAC.
func (r *running) forbidden() []string {
	data, _ := os.ReadFile(r.logPath)
	return controlplane.RBACDenials(data)
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandArgs expands $(VAR) in the container's args as the kubelet does,
// from literal env values and the metadata.namespace field.
func expandArgs(c corev1.Container, ns string) ([]string, error) {
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			vars[e.Name] = ns
		}
	}
	var missing []string
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := vars[name]
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("args refer to env %v, which the container does not set", missing)
	}
	return out, nil
}

// hostIPv4 is an address of this host the API server reaches and an
// EndpointSlice accepts (not loopback): the default route's interface's,
// else any global one.
func hostIPv4(t *testing.T) string {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("listing routes: %v", err)
	}
	var links []int
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			links = append(links, r.LinkIndex)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("listing addresses: %v", err)
	}
	for _, pass := range []bool{true, false} {
		for _, a := range addrs {
			onDefault := false
			for _, l := range links {
				onDefault = onDefault || a.LinkIndex == l
			}
			if a.IP.IsGlobalUnicast() && (onDefault || !pass) {
				return a.IP.String()
			}
		}
	}
	t.Fatal("this host has no global IPv4 address for the API server to reach the webhook on")
	return ""
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// poll waits for cond, failing the test with what after d.
func poll(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx := ctxFor(t, d+5*time.Second)
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d, true, cond); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: not within %s", what, d)
		}
		t.Fatalf("%s: %v", what, err)
	}
}
