package e2e

import (
	"os"
	"testing"

	"github.com/berth-io/berth/tests/multus"
)

// binDirs are where libcni finds plugins: Berth's, built for this run, and
// the reference plugins of `make bins`.
var binDirs []string

func TestMain(m *testing.M) {
	os.Exit(multus.TestMain(m, func(dirs []string) int {
		binDirs = dirs
		return m.Run()
	}))
}
