package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// installCRDs creates (or updates) every CRD in dirs and waits until the API
// server serves them. No dirs means Berth's CRDs and Multus's
// NetworkAttachmentDefinition.
func (cp *ControlPlane) installCRDs(ctx context.Context, dirs []string) error {
	if len(dirs) == 0 {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		dirs = []string{filepath.Join(root, "manifests", "crds"), filepath.Join(root, "manifests", "multus")}
	}
	for _, dir := range dirs {
		crds, err := ReadCRDs(dir)
		if err != nil {
			return err
		}
		if err := cp.InstallCRDs(ctx, crds...); err != nil {
			return err
		}
	}
	return nil
}

// ReadCRDs reads every *.yaml file in dir as a CustomResourceDefinition.
func ReadCRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing CRDs in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD manifests in %s; run `make generate`", dir)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CRD %s: %w", f, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return nil, fmt.Errorf("decoding CRD %s: %w", f, err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// InstallCRDs creates or updates crds and waits until each is Established.
func (cp *ControlPlane) InstallCRDs(ctx context.Context, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	for _, crd := range crds {
		err := cp.Client.Create(ctx, crd)
		if apierrors.IsAlreadyExists(err) {
			existing := &apiextensionsv1.CustomResourceDefinition{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(crd), existing); err != nil {
				return fmt.Errorf("reading CRD %s: %w", crd.Name, err)
			}
			crd.ResourceVersion = existing.ResourceVersion
			err = cp.Client.Update(ctx, crd)
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", crd.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, crd := range crds {
		for {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
				return fmt.Errorf("waiting for CRD %s: %w", crd.Name, err)
			}
			if established(got) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for CRD %s to be established: %w", crd.Name, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
