package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-io/berth/deviceplugin/devinfo"
	"github.com/berth-io/berth/deviceplugin/kubelettest"
	"github.com/berth-io/berth/deviceplugin/sysfs/sysfstest"
)

const twoResources = `{"resourceList": [
  {"resourceName": "intel_netdevice", "selectors": {"vendors": ["8086"], "drivers": ["iavf"], "pfNames": ["ens817f0"]}},
  {"resourceName": "nothing", "selectors": {"vendors": ["1af4"]}}
]}`

func setup(t *testing.T, cfg string) (tree *sysfstest.Tree, cfgPath, pluginDir string) {
	t.Helper()
	tree, err := sysfstest.Standard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pluginDir, err = os.MkdirTemp("", "dp") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pluginDir) })
	return tree, cfgPath, pluginDir
}

func TestExitCodesAndMessages(t *testing.T) {
	_, good, _ := setup(t, twoResources)
	_, bad, _ := setup(t, `{"resourceList": [{"resourceName": "x", "deviceType": "vdpa", "selectors": {}}]}`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid configuration", []string{"-config", bad}, 1, `berth-sriov-dp: invalid configuration: ` + bad + `: resourceList[0] (resourceName "x"): deviceType: unknown device type "vdpa"`},
		{"missing configuration", []string{"-config", bad + ".missing"}, 1, "reading device plugin configuration"},
		{"bad prefix", []string{"-config", good, "-resource-prefix", "Not_A_Domain"}, 1, `default resource prefix "Not_A_Domain"`},
		{"bad log level", []string{"-config", good, "-log-level", "loud"}, 2, `-log-level "loud"`},
		{"poll too fast", []string{"-config", good, "-poll-interval", "1ms"}, 2, "-poll-interval 1ms: at least 100ms"},
		{"unknown flag", []string{"-sysfs-root", "/sys"}, 2, "flag provided but not defined: -sysfs-root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	tree, cfg, _ := setup(t, twoResources)
	if err := tree.SetLink("ens817f0", "down", true); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-config", cfg, "-sysfs", tree.Root, "-dry-run"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	// Compared word by word: column widths are tabwriter's business.
	want := []string{
		"RESOURCE VF PF INDEX DRIVER NUMA HEALTH",
		"berth.io/intel_netdevice 0000:83:00.0 ens817f0 0 iavf 1 Unhealthy: PF ens817f0 link is down",
		"berth.io/intel_netdevice 0000:83:00.1 ens817f0 1 iavf 1 Unhealthy: PF ens817f0 link is down",
		"berth.io/nothing (selects no VF)",
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry run printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestServesUntilSignalled(t *testing.T) {
	tree, cfg, dir := setup(t, twoResources)
	k, err := kubelettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	infoDir := filepath.Join(t.TempDir(), "devinfo")
	go func() {
		done <- run(ctx, []string{"-config", cfg, "-sysfs", tree.Root, "-device-plugin-dir", dir, "-device-info-dir", infoDir, "-poll-interval", "100ms"}, &bytes.Buffer{}, &stderr)
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	st, err := k.Wait(wctx, "berth.io/intel_netdevice", func(s kubelettest.State) bool { return s.Healthy() == 2 })
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Devices {
		if _, err := os.Stat(devinfo.Path(infoDir, "berth.io/intel_netdevice", d.ID)); err != nil {
			t.Errorf("advertised VF %s has no device information file: %v", d.ID, err)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the signal", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit after the signal")
	}
	if left, _ := os.ReadDir(infoDir); len(left) != 0 {
		t.Errorf("device information files left after the signal: %v", left)
	}
	// stderr is written by the (now finished) command only.
	if !strings.Contains(stderr.String(), "resource selects no VF") {
		t.Errorf("no warning about the empty resource:\n%s", stderr.String())
	}
}

// TestShippedManifests runs the DaemonSet's arguments and the ConfigMap's
// configuration through the command, and checks the mounts match the paths.
func TestShippedManifests(t *testing.T) {
	var ds appsv1.DaemonSet
	readManifest(t, "daemonset.yaml", &ds)
	var cm corev1.ConfigMap
	readManifest(t, "configmap.yaml", &cm)

	c := ds.Spec.Template.Spec.Containers[0]
	flags := map[string]string{}
	for _, a := range c.Args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !ok {
			t.Fatalf("argument %q: write -flag=value", a)
		}
		flags[name] = value
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if vol := mounts[filepath.Dir(flags["config"])]; vol != "config" {
		t.Errorf("-config=%s is not in the ConfigMap's mount (%v)", flags["config"], mounts)
	}
	if _, ok := cm.Data[filepath.Base(flags["config"])]; !ok {
		t.Errorf("the ConfigMap has no key %s", filepath.Base(flags["config"]))
	}
	if cm.Name != ds.Spec.Template.Spec.Volumes[1].ConfigMap.Name {
		t.Errorf("DaemonSet mounts ConfigMap %q, the manifest is %q", ds.Spec.Template.Spec.Volumes[1].ConfigMap.Name, cm.Name)
	}
	if mounts[flags["device-plugin-dir"]] != "device-plugins" || mounts[flags["sysfs"]] != "sys" || mounts[flags["device-info-dir"]] != "devinfo" {
		t.Errorf("device plugin dir, sysfs or device information dir not mounted where the flags say: %v", mounts)
	}
	if flags["device-info-dir"] != devinfo.DefaultDir {
		t.Errorf("-device-info-dir=%s; Multus reads %s", flags["device-info-dir"], devinfo.DefaultDir)
	}
	if !ds.Spec.Template.Spec.HostNetwork {
		t.Error("without hostNetwork sysfs hides the host's interfaces")
	}

	// The shipped configuration, with the shipped flags, on the fake tree.
	tree, _, _ := setup(t, twoResources)
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(cm.Data["config.json"]), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, c.Args...), "-config="+cfg, "-sysfs="+tree.Root, "-dry-run")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("the shipped arguments and configuration fail (exit %d): %s", code, stderr.String())
	}
	for _, want := range []string{"berth.io/sriov_netdevice  0000:80:00.0", "berth.io/sriov_dpdk", "berth.io/mlnx_rdma"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dry run with the shipped configuration lacks %q:\n%s", want, stdout.String())
		}
	}
}

func readManifest(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "manifests", "deviceplugin", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
