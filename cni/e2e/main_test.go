package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-io/berth/tests/controlplane"
	"github.com/berth-io/berth/tests/multus"
)

// binDirs are where libcni finds plugins: Berth's, built for this run, and
// the reference plugins of `make bins`.
var binDirs []string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ref, err := controlplane.CNIBinDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(ref, "macvlan"))
	}
	if err != nil {
		if controlplane.InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: reference CNI plugins missing (%v); run `make bins`\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP: reference CNI plugins missing (%v); run `make bins`\n", err)
		return 0
	}
	dir, err := os.MkdirTemp("", "berth-cni-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := multus.BuildPlugins(ctx, dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	binDirs = []string{dir, ref}
	return m.Run()
}
