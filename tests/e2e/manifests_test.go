package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-io/berth/cni/install"
	"github.com/berth-io/berth/tests/controlplane"
)

// The Helm chart carries copies of files Helm cannot reach outside the
// chart: the CRDs, the CNI and device plugin DaemonSets, the webhook
// configurations. They must say what the originals say.
func TestHelmChartInStep(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(root, "manifests")
	chart := filepath.Join(m, "helm", "berth")
	read := func(p string) []byte {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	crds, _ := filepath.Glob(filepath.Join(m, "crds", "*.yaml"))
	crds = append(crds, filepath.Join(m, "multus", "k8s.cni.cncf.io_network-attachment-definitions.yaml"))
	for _, src := range crds {
		if !bytes.Equal(read(src), read(filepath.Join(chart, "crds", filepath.Base(src)))) {
			t.Errorf("chart crds/%s differs from %s: run `make generate`", filepath.Base(src), src)
		}
	}
	templated := func(data []byte) string {
		s := strings.ReplaceAll(string(data), "berth-system", "{{ .Release.Namespace }}")
		return s
	}
	for _, f := range []string{"cni/rbac.yaml", "cni/daemonset.yaml", "deviceplugin/configmap.yaml", "deviceplugin/daemonset.yaml"} {
		copy := string(read(filepath.Join(chart, "templates", strings.ReplaceAll(f, "/", "-"))))
		_, body, _ := strings.Cut(copy, "*/}}\n")
		if body != templated(read(filepath.Join(m, f))) {
			t.Errorf("chart template %s is out of step with manifests/%s", strings.ReplaceAll(f, "/", "-"), f)
		}
	}
	webhooks := string(read(filepath.Join(m, "controller", "webhooks.yaml")))
	_, webhooks, _ = strings.Cut(webhooks, "do not edit.\n")
	want := strings.ReplaceAll(templated([]byte(webhooks)), "timeoutSeconds: 10", "timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}")
	want = strings.ReplaceAll(want, "\n  name: berth\n", "\n  name: berth\n  {{- include \"berth.webhookAnnotations\" . | nindent 2 }}\n")
	_, got, _ := strings.Cut(string(read(filepath.Join(chart, "templates", "webhooks.yaml"))), "*/}}\n")
	if got != want {
		t.Errorf("chart templates/webhooks.yaml is out of step with manifests/controller/webhooks.yaml")
	}
}

// TestDockerfileBuildsTheManifestsImages: every image the manifests run is
// a target of the Dockerfile, and what the manifests and the installer
// expect inside it is copied there.
func TestDockerfileBuildsTheManifestsImages(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(dockerfile)
	for _, tt := range []struct {
		manifest, image string
		inside          []string // paths the image must hold
	}{
		{"controller/deployment.yaml", "berth-controller", []string{"/usr/local/bin/berth-controller"}},
		{"cni/daemonset.yaml", "berth-cni", []string{"/usr/local/bin/berth-cni-install", "/usr/local/lib/berth/cni/"}},
		{"deviceplugin/daemonset.yaml", "berth-sriov-dp", []string{"/usr/local/bin/berth-sriov-dp"}},
	} {
		m, err := os.ReadFile(filepath.Join(root, "manifests", tt.manifest))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(m), "image: ghcr.io/berth-io/"+tt.image+":") {
			t.Errorf("manifests/%s does not run image %s", tt.manifest, tt.image)
		}
		_, stage, ok := strings.Cut(df, " AS "+tt.image+"\n")
		if !ok {
			t.Errorf("Dockerfile has no target %s", tt.image)
			continue
		}
		stage, _, _ = strings.Cut(stage, "\nFROM ")
		for _, p := range tt.inside {
			if !strings.Contains(stage, p) {
				t.Errorf("Dockerfile target %s does not put %s in the image", tt.image, p)
			}
		}
	}
	// The CNI image carries every plugin the installer copies.
	_, cni, _ := strings.Cut(df, " AS berth-cni\n")
	cni, _, _ = strings.Cut(cni, "\nFROM ")
	for _, plugin := range install.Plugins() {
		if !strings.Contains(cni, "/out/"+plugin+" ") {
			t.Errorf("Dockerfile target berth-cni does not copy %s, which berth-cni-install installs", plugin)
		}
	}
}

// TestInstallerDescriptionsNamePlugins: the descriptions of what berth-cni
// installs (the DaemonSet's header, berth-cni-install's package comment)
// name every plugin the installer copies.
func TestInstallerDescriptionsNamePlugins(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, comment string }{
		{"manifests/cni/daemonset.yaml", "#"},
		{"cmd/berth-cni-install/main.go", "//"},
	} {
		data, err := os.ReadFile(filepath.Join(root, f.path))
		if err != nil {
			t.Fatal(err)
		}
		var header strings.Builder
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, f.comment) {
				break
			}
			header.WriteString(line + "\n")
		}
		for _, plugin := range install.Plugins() {
			if !strings.Contains(header.String(), plugin) {
				t.Errorf("the header comment of %s does not name %s, which berth-cni-install installs", f.path, plugin)
			}
		}
	}
}
