package ifacer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/tests/controlplane"
)

// bin is berth-ifacer built once for the namespace tests, in a directory
// removed when they end; unit tests never build it.
var bin struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// pluginDir returns the directory holding the built berth-ifacer.
func pluginDir(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		root, err := controlplane.RepoRoot()
		if err != nil {
			bin.err = err
			return
		}
		if bin.dir, bin.err = os.MkdirTemp("", "berth-ifacer-"); bin.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin.dir+"/", "./cmd/berth-ifacer")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("building berth-ifacer: %w: %s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.dir
}

// referenceDir returns the reference CNI plugins of `make bins` (macvlan,
// static): missing, they fail the test in CI and skip it elsewhere.
func referenceDir(t *testing.T) string {
	t.Helper()
	dir, err := controlplane.CNIBinDir()
	if err == nil {
		for _, p := range []string{"macvlan", "static"} {
			if _, err = os.Stat(filepath.Join(dir, p)); err != nil {
				break
			}
		}
	}
	if err != nil {
		if controlplane.InCI() {
			t.Fatalf("reference CNI plugins missing (%v): run `make bins`", err)
		}
		t.Skipf("reference CNI plugins missing (%v): run `make bins`", err)
	}
	return dir
}
