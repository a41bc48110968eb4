package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/tests/controlplane"
)

// demo holds what the steps share.
type demo struct {
	cp *controlplane.ControlPlane
}

// run is the demo script: Berth is started first, as it would be installed,
// then the examples are applied and workloads created; the last steps go
// down to the node and back up to the pods' lifecycle.
func (d *demo) run(ctx context.Context) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	if err := d.startBerth(ctx); err != nil {
		return err
	}
	if err := d.nodes(ctx); err != nil {
		return err
	}
	examples := filepath.Join(root, "examples")
	step("applying examples/: IP pools, networks, an attachment policy and the coordinator defaults")
	for _, f := range []string{"ippools.yaml", "networks.yaml", "policies.yaml", "coordinator.yaml"} {
		if err := d.apply(ctx, filepath.Join(examples, f)); err != nil {
			return err
		}
	}
	if err := d.networks(ctx); err != nil {
		return err
	}
	if err := d.sriov(ctx); err != nil {
		return err
	}
	pods, err := d.workloads(ctx)
	if err != nil {
		return err
	}
	if err := d.datapath(ctx, pods); err != nil {
		return err
	}
	return d.lifecycle(ctx)
}

// apply creates every object of a multi-document YAML file with server-side
// apply, so running a step twice is harmless.
func (d *demo) apply(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.cp.Client.Patch(ctx, obj, client.Apply, client.FieldOwner("berth-demo"), client.ForceOwnership) //nolint:staticcheck // unstructured apply
		cancel()
		if err != nil {
			return fmt.Errorf("applying %s %q from %s: %w", obj.GetKind(), obj.GetName(), path, err)
		}
		fmt.Printf("%s/%s applied\n", obj.GetKind(), obj.GetName())
	}
}

// kubectl runs the pinned kubectl against the demo's control plane.
func (d *demo) kubectl(ctx context.Context, args ...string) error {
	bins, err := controlplane.FindBinaries()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Kubectl, append([]string{"--kubeconfig", d.cp.Kubeconfig}, args...)...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %v: %w", args, err)
	}
	return nil
}
