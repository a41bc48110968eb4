package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
