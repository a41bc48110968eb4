package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-io/berth/deviceplugin/walkthrough"
	"github.com/berth-io/berth/tests/controlplane"
)

// sriov runs berth-sriov-dp with the shipped ConfigMap's resource list on a
// simulated node (fake sysfs tree) against a test kubelet, and shows what the
// kubelet is told.
func (d *demo) sriov(ctx context.Context) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	path := filepath.Join(root, "manifests", "deviceplugin", "configmap.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the device plugin ConfigMap: %w", err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return walkthrough.Run(ctx, walkthrough.Options{
		Config: []byte(cm.Data["config.json"]), DefaultPrefix: "berth.io", Out: os.Stdout, Step: step,
	})
}
