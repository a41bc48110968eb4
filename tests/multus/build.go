package multus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-io/berth/cni/install"
	"github.com/berth-io/berth/tests/controlplane"
)

// ErrNoReferencePlugins: `make bins` has not built the reference plugins
// (macvlan, ptp, host-local...) the chains are run with.
var ErrNoReferencePlugins = errors.New("reference CNI plugins missing: run `make bins`")

// BuildPlugins compiles Berth's CNI plugins (those berth-cni-install
// ships) from this checkout into dir, for tests and the demo to run as a
// node would.
func BuildPlugins(ctx context.Context, dir string) error {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dir + "/"}
	for _, p := range install.Plugins() {
		args = append(args, "./cmd/"+p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %v: %w: %s", install.Plugins(), err, out)
	}
	return nil
}

// PluginDirs builds Berth's plugins into dir and returns the directories a
// Runtime searches: dir, then the reference plugins of `make bins`.
func PluginDirs(ctx context.Context, dir string) ([]string, error) {
	ref, err := controlplane.CNIBinDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(ref, "macvlan")); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoReferencePlugins, err)
	}
	if err := BuildPlugins(ctx, dir); err != nil {
		return nil, err
	}
	return []string{dir, ref}, nil
}

// TestMain is the body of a TestMain whose tests run plugin chains: it
// builds the plugins into a temporary directory and calls run with the
// directories. Outside CI, missing reference plugins skip the package with
// a message; in CI they fail it.
func TestMain(m *testing.M, run func(binDirs []string) int) int {
	dir, err := os.MkdirTemp("", "berth-plugins-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	dirs, err := PluginDirs(ctx, dir)
	cancel()
	switch {
	case errors.Is(err, ErrNoReferencePlugins) && !controlplane.InCI():
		fmt.Fprintf(os.Stderr, "SKIP: %v\n", err)
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return run(dirs)
}
