package multus_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/tests/controlplane"
)

// The berth-cni DaemonSet and its RBAC are accepted by the API server
// (server-side dry run: every field validated, nothing stored).
func TestCNIManifestsApply(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := controlplane.Context(t, 30*time.Second)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "berth-system"}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	n := 0
	for _, file := range []string{"rbac.yaml", "daemonset.yaml"} {
		f, err := os.Open(filepath.Join(root, "manifests", "cni", file))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", file, err)
			}
			if err := cp.Client.Create(ctx, obj, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
			}
			n++
		}
		f.Close()
	}
	if n != 4 {
		t.Errorf("applied %d objects, want 4 (ServiceAccount, ClusterRole, ClusterRoleBinding, DaemonSet)", n)
	}
}
