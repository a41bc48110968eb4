// Command demo is `make demo`: it starts a local control plane, runs Berth
// against it, applies the examples and shows what pods receive. With -keep it
// leaves everything running and prints the KUBECONFIG to use; -down stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-io/berth/tests/controlplane"
)

func main() {
	dir := flag.String("dir", "/tmp/berth-demo", "directory of the demo's control plane")
	keep := flag.Bool("keep", false, "leave the control plane running and print the KUBECONFIG")
	down := flag.Bool("down", false, "stop a control plane left running with -keep")
	flag.Parse()

	if *down {
		if err := controlplane.StopDir(*dir); err != nil {
			fmt.Fprintf(os.Stderr, "demo-down: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("stopped the demo control plane in", *dir)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, keep bool) error {
	// A demo left running by an earlier KEEP=1 is replaced, not joined.
	if _, err := os.Stat(dir); err == nil {
		if err := controlplane.StopDir(dir); err != nil {
			return fmt.Errorf("stopping the previous demo: %w", err)
		}
	}
	step("starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler in " + dir)
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	cp, err := controlplane.Start(startCtx, controlplane.Options{Dir: dir, ControllerManager: true, Scheduler: true, Detach: keep})
	cancel()
	if err != nil {
		return err
	}
	d := &demo{cp: cp}
	if !keep {
		defer func() {
			step("tearing down")
			if err := cp.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "demo: stopping control plane: %v\n", err)
			}
			_ = os.RemoveAll(dir)
		}()
	}
	if err := d.run(ctx); err != nil {
		return err
	}
	if keep {
		fmt.Println()
		fmt.Println("The control plane and berth-controller keep running; `make demo-down` stops them. To use them:")
		fmt.Printf("export KUBECONFIG=%s\n", cp.Kubeconfig)
	}
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }
