package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControlPlaneRunsWorkloadsAndCleansUp proves the harness gives tests a
// working cluster: the controller manager turns a Deployment into pods, the
// scheduler binds them to a Node the test registered, and Stop leaves no
// process and no directory behind.
func TestControlPlaneRunsWorkloadsAndCleansUp(t *testing.T) {
	if _, err := FindBinaries(); err != nil {
		if InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cp, err := Start(ctx, Options{ControllerManager: true, Scheduler: true})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cp.Stop()
		}
	}()
	pids := map[string]int{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		data, err := os.ReadFile(filepath.Join(cp.Dir, name+".pid"))
		if err != nil {
			t.Fatalf("no pid file for %s: %v", name, err)
		}
		pids[name], _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if _, err := os.Stat(cp.Kubeconfig); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}

	if _, err := cp.CreateNode(ctx, "node-a", map[string]string{"rack": "r1"}, nil); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "smoke"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}},
			},
		},
	}
	if err := cp.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	for {
		pods := &corev1.PodList{}
		if err := cp.Client.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels(labels)); err != nil {
			t.Fatal(err)
		}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == "node-a" {
				bound++
			}
		}
		if bound == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods of the Deployment not scheduled to node-a: %d of %d bound", bound, len(pods.Items))
		case <-time.After(200 * time.Millisecond):
		}
	}

	dir := cp.Dir
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", dir, err)
	}
}

func TestToolVersionsPinnedInToolsGoMod(t *testing.T) {
	for _, m := range []string{"k8s.io/kubernetes", "github.com/containernetworking/plugins", "sigs.k8s.io/controller-tools"} {
		v, err := ToolVersion(m)
		if err != nil || !strings.HasPrefix(v, "v") {
			t.Errorf("ToolVersion(%s) = %q, %v", m, v, err)
		}
	}
	// Berth's own k8s.io modules must be the same minor release as the
	// control plane it is tested against.
	k8s, _ := ToolVersion("k8s.io/kubernetes")
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	minor := "v0." + strings.Split(k8s, ".")[1] + "."
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "k8s.io/api" || f[0] == "k8s.io/client-go" || f[0] == "k8s.io/apimachinery") && !strings.HasPrefix(f[1], minor) {
			t.Errorf("go.mod has %s %s, want %sx to match Kubernetes %s", f[0], f[1], minor, k8s)
		}
	}
}
