package multus

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/berth-io/berth/tests/controlplane"
)

// BuildPlugins compiles berth-ipam and berth-coordinator from this checkout
// into dir, for tests and the demo to run as a node would.
func BuildPlugins(ctx context.Context, dir string) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/berth-ipam", "./cmd/berth-coordinator")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building berth-ipam and berth-coordinator: %w: %s", err, out)
	}
	return nil
}
