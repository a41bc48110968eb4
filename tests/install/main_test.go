// Package install installs Berth the two ways users do, `kubectl apply -k
// manifests/` and `helm install` of manifests/helm/berth, on a local control
// plane that starts without Berth's CRDs. It then runs berth-controller as
// the installed Deployment would run it: with the Deployment's arguments,
// as the Deployment's ServiceAccount (so the shipped RBAC is what the API
// server checks), and reached by the API server through the berth-webhook
// Service (an EndpointSlice points it at the process). Other packages run
// Berth as the cluster admin behind webhook URLs; this one proves the
// manifests.
package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/tests/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.Main(m, controlplane.Options{
		// The namespace and garbage collectors finish the uninstalls.
		ControllerManager: true,
		NoCRDs:            true,
		// Webhook calls go to an endpoint of the Service, not its ClusterIP
		// (nothing routes ClusterIPs here).
		ExtraAPIServerArgs: []string{"--enable-aggregator-routing=true"},
	}, &cp)
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// repo returns the repository root.
func repo(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// kubectl runs the pinned kubectl against the control plane.
func kubectl(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	bins, err := controlplane.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	return run(t, timeout, bins.Kubectl, append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
}

// helm runs the pinned helm against the control plane.
func helm(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	bin, err := controlplane.Helm()
	if err != nil {
		if !controlplane.InCI() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	// Helm keeps its cache, config and data under HOME unless told.
	home := t.TempDir()
	cmd := []string{"--kubeconfig=" + cp.Kubeconfig}
	return runEnv(t, timeout, []string{"HELM_CACHE_HOME=" + filepath.Join(home, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(home, "config"), "HELM_DATA_HOME=" + filepath.Join(home, "data")},
		bin, append(cmd, args...)...)
}

func run(t *testing.T, timeout time.Duration, bin string, args ...string) (string, error) {
	t.Helper()
	return runEnv(t, timeout, nil, bin, args...)
}

func runEnv(t *testing.T, timeout time.Duration, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	// Not the test's context: uninstalls run from Cleanup, after it ends.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repo(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// must fails the test on the error of a kubectl or helm run, else returns its output.
func must(t *testing.T) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context { return controlplane.Context(t, d) }
