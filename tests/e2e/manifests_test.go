package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"

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
	// The copies of the node components are rendered as Helm would (they
	// use nothing but values, the namespace and if): with the chart's
	// default values they must be the originals, and the values they take
	// must reach the output.
	values := map[string]any{}
	if err := yaml.Unmarshal(read(filepath.Join(chart, "values.yaml")), &values); err != nil {
		t.Fatalf("chart values.yaml: %v", err)
	}
	for _, tt := range []struct {
		file string
		// set are values other than the defaults, and what each must put
		// in place of the original's line.
		set []valueCase
		// switch is the value that leaves the file out when false.
		switchValue string
	}{
		{file: "cni/rbac.yaml"},
		{file: "cni/daemonset.yaml", set: []valueCase{
			{"cni.image", "registry.example/berth-cni:v9", "image: ghcr.io/berth-io/berth-cni:latest", "image: registry.example/berth-cni:v9"},
			{"cni.imagePullPolicy", "Always", "imagePullPolicy: IfNotPresent", "imagePullPolicy: Always"},
		}},
		{file: "deviceplugin/configmap.yaml", switchValue: "deviceplugin.enabled"},
		{file: "deviceplugin/daemonset.yaml", switchValue: "deviceplugin.enabled", set: []valueCase{
			{"deviceplugin.image", "registry.example/berth-sriov-dp:v9", "image: ghcr.io/berth-io/berth-sriov-dp:latest", "image: registry.example/berth-sriov-dp:v9"},
			{"deviceplugin.imagePullPolicy", "Always", "imagePullPolicy: IfNotPresent", "imagePullPolicy: Always"},
		}},
	} {
		name := strings.ReplaceAll(tt.file, "/", "-")
		copy := string(read(filepath.Join(chart, "templates", name)))
		orig := string(read(filepath.Join(m, tt.file)))
		if got := renderChartFile(t, name, copy, values); got != orig {
			t.Errorf("chart template %s, rendered with the default values, is out of step with manifests/%s:\n%s", name, tt.file, got)
		}
		for _, v := range tt.set {
			if strings.Count(orig, v.line) != 1 {
				t.Errorf("manifests/%s does not hold %q once", tt.file, v.line)
				continue
			}
			got := renderChartFile(t, name, copy, withValue(values, v.path, v.value))
			if want := strings.Replace(orig, v.line, v.rendered, 1); got != want {
				t.Errorf("chart template %s with %s=%s:\n%s\nwant only %q changed to %q", name, v.path, v.value, got, v.line, v.rendered)
			}
		}
		if tt.switchValue != "" {
			if got := renderChartFile(t, name, copy, withValue(values, tt.switchValue, false)); strings.TrimSpace(got) != "" {
				t.Errorf("chart template %s with %s=false renders\n%s", name, tt.switchValue, got)
			}
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

// valueCase is a chart value set to something other than its default, and
// the line of the original it must change, and how.
type valueCase struct {
	path     string
	value    any
	line     string
	rendered string
}

// renderChartFile renders one chart template as Helm does for the files
// that use only .Values, .Release.Namespace and text/template's actions
// (the release is installed in berth-system, the originals' namespace).
// Helm drops the leading blank lines the header comment leaves.
func renderChartFile(t *testing.T, name, text string, values map[string]any) string {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatalf("chart template %s: %v", name, err)
	}
	var out strings.Builder
	data := map[string]any{"Values": values, "Release": map[string]any{"Namespace": "berth-system"}}
	if err := tmpl.Execute(&out, data); err != nil {
		t.Fatalf("rendering chart template %s: %v", name, err)
	}
	return strings.TrimLeft(out.String(), "\n")
}

// withValue is a deep copy of values with the dotted path set to v.
func withValue(values map[string]any, path string, v any) map[string]any {
	out := map[string]any{}
	for k, x := range values {
		out[k] = x
	}
	key, rest, nested := strings.Cut(path, ".")
	if !nested {
		out[key] = v
		return out
	}
	inner, _ := out[key].(map[string]any)
	out[key] = withValue(inner, rest, v)
	return out
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
