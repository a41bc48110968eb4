package controlplane

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// InCI reports whether the run is CI's (CI=true): there, missing
// infrastructure fails the run instead of skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// Main is a TestMain body for a package whose tests share one control plane:
//
//	func TestMain(m *testing.M) { os.Exit(controlplane.Main(m, opts, &cp)) }
//
// Outside CI, missing binaries skip the package with a message saying what to
// build; in CI they fail it.
func Main(m *testing.M, opts Options, cp **ControlPlane) int {
	if _, err := FindBinaries(); err != nil {
		if InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP: integration tests need a local control plane: %v\n", err)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	started, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting control plane: %v\n", err)
		return 1
	}
	*cp = started
	code := m.Run()
	if opts.AfterTests != nil {
		if err := opts.AfterTests(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: after the tests: %v\n", err)
			code = 1
		}
	}
	if code != 0 && !InCI() {
		started.Keep()
		fmt.Fprintf(os.Stderr, "control plane logs kept in %s\n", started.Dir)
	}
	if err := started.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Context returns a context for one test step, cancelled at the test's end
// or after timeout, whichever comes first.
func Context(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}
