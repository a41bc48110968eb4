package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth-io/berth/tests/controlplane"
)

// TestGeneratedFilesUpToDate regenerates the deepcopy functions and the CRD
// manifests into a temp dir and fails if the committed ones differ: a type
// changed without `make generate`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	gen, err := controlplane.ControllerGen()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gen); err != nil {
		if controlplane.InCI() {
			t.Fatalf("controller-gen missing: %v", err)
		}
		t.Skipf("controller-gen not built (run `make bins`): %v", err)
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, args := range [][]string{
		{"object", "paths=./api/v1alpha1/...", "output:object:dir=" + out},
		{"object", "paths=./api/nad/...", "output:object:dir=" + filepath.Join(out, "nad")},
		{"crd", "paths=./api/v1alpha1/...", "output:crd:dir=" + filepath.Join(out, "crds")},
		{"crd", "paths=./api/nad/...", "output:crd:dir=" + filepath.Join(out, "multus")},
	} {
		cmd := exec.Command(gen, args...)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, msg)
		}
	}
	compare := func(generated, committed string) {
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Fatalf("%v (run `make generate`)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make generate` and commit the result", committed)
		}
	}
	compare(filepath.Join(out, "zz_generated.deepcopy.go"), filepath.Join(root, "api", "v1alpha1", "zz_generated.deepcopy.go"))
	compare(filepath.Join(out, "nad", "zz_generated.deepcopy.go"), filepath.Join(root, "api", "nad", "v1", "zz_generated.deepcopy.go"))
	compare(filepath.Join(out, "multus", "k8s.cni.cncf.io_network-attachment-definitions.yaml"),
		filepath.Join(root, "manifests", "multus", "k8s.cni.cncf.io_network-attachment-definitions.yaml"))
	crds, err := filepath.Glob(filepath.Join(out, "crds", "*.yaml"))
	if err != nil || len(crds) != 5 {
		t.Fatalf("controller-gen wrote %d CRDs (%v), want 5", len(crds), err)
	}
	for _, f := range crds {
		compare(f, filepath.Join(root, "manifests", "crds", filepath.Base(f)))
	}
	committed, _ := filepath.Glob(filepath.Join(root, "manifests", "crds", "*.yaml"))
	if len(committed) != len(crds) {
		t.Errorf("manifests/crds holds %d files, controller-gen writes %d: remove the stale ones", len(committed), len(crds))
	}
}
