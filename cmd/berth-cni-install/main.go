// Command berth-cni-install runs in the berth-cni DaemonSet: it copies
// berth-ipam, berth-coordinator and berth-ifacer (install.Plugins) into the
// node's CNI plugin directory, then keeps the plugins' kubeconfig current
// until it is stopped.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-io/berth/cni/install"
)

func main() {
	src := flag.String("src", "/usr/local/lib/berth/cni", "directory holding the plugin binaries in the image")
	binDir := flag.String("bin-dir", "/host/opt/cni/bin", "the node's CNI plugin directory, mounted")
	kubeconfig := flag.String("kubeconfig", "/host/etc/cni/net.d/berth.d/berth.kubeconfig", "where to write the plugins' kubeconfig; empty writes none")
	saDir := flag.String("service-account-dir", "/var/run/secrets/kubernetes.io/serviceaccount", "the mounted service account")
	refresh := flag.Duration("refresh", time.Minute, "how often to rewrite the kubeconfig if the token rotated")
	once := flag.Bool("once", false, "install and exit (for an init container)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *src, *binDir, *kubeconfig, *saDir, *refresh, *once); err != nil {
		fmt.Fprintf(os.Stderr, "berth-cni-install: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, src, binDir, kubeconfig, saDir string, refresh time.Duration, once bool) error {
	if err := install.Copy(src, binDir, install.Plugins()); err != nil {
		return err
	}
	fmt.Printf("installed %v into %s\n", install.Plugins(), binDir)
	if kubeconfig == "" {
		if once {
			return nil
		}
		<-ctx.Done()
		return nil
	}
	creds := install.Credentials{
		CAFile:    saDir + "/ca.crt",
		TokenFile: saDir + "/token",
	}
	if host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"); host != "" && port != "" {
		creds.Server = "https://" + net.JoinHostPort(host, port)
	}
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		changed, err := install.WriteKubeconfig(kubeconfig, creds)
		if err != nil {
			return err
		}
		if changed {
			fmt.Printf("wrote %s\n", kubeconfig)
		}
		if once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
