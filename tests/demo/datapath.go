package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/tests/controlplane"
	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// datapath goes down to the node: the first StatefulSet pod, as admission
// left it, is attached the way Multus would (its networks annotation, the
// NetworkAttachmentDefinition the Network controller generated, the
// assignment in cni-args) in a simulated node whose uplink is the Network's
// master, and its interfaces, routes and rules are printed from inside.
func (d *demo) datapath(ctx context.Context, pods []corev1.Pod) error {
	var pod *corev1.Pod
	for i := range pods {
		if pods[i].Labels["app"] == "db" {
			pod = &pods[i]
			break
		}
	}
	if pod == nil {
		return fmt.Errorf("no StatefulSet pod to materialize")
	}
	step(fmt.Sprintf("materializing pod %s on a simulated node: eth0 from a cluster network (ptp), net1 from the storage NAD (macvlan on eth1 + berth-ipam + berth-coordinator)", pod.Name))
	if os.Geteuid() != 0 {
		fmt.Println("skipped: network namespaces need root")
		return nil
	}
	fmt.Printf("pod %s/%s annotations as admission wrote them:\n  %s: %s\n  %s: %s\n", pod.Namespace, pod.Name,
		assignment.Annotation, pod.Annotations[assignment.Annotation], nadv1.NetworksAnnotation, pod.Annotations[nadv1.NetworksAnnotation])
	return d.podInterfaces(ctx, pod, "eth1")
}

// podInterfaces attaches pod's networks in a simulated node whose uplink
// (the macvlan master its NADs name) is called uplink, on a segment whose
// gateway holds 10.6.0.1/16 and fd00:6::1/64 (the example pools'
// gateways), prints `ip addr`, `ip route`, `ip -6 route` and `ip rule` from
// inside the pod, and removes everything again.
func (d *demo) podInterfaces(ctx context.Context, pod *corev1.Pod, uplink string) error {
	binDirs, cleanup, err := pluginDirs(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	u, err := netsim.BuildUnderlay(ctx, netsim.UnderlayConfig{
		Gateway: []netip.Prefix{netip.MustParsePrefix("10.6.0.1/16"), netip.MustParsePrefix("fd00:6::1/64")},
		Nodes:   [][]netip.Prefix{{netip.MustParsePrefix("10.6.0.10/16")}},
		Uplink:  uplink,
	})
	if err != nil {
		return err
	}
	defer func() { _ = u.Delete() }()
	netns, err := netsim.CreateNS(ctx, "berth-demo-pod")
	if err != nil {
		return err
	}
	defer func() { _ = netns.Delete() }()
	cache, err := os.MkdirTemp("", "berth-demo-cni-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	cluster, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "cluster", "type": "ptp",
		"ipam": map[string]any{"type": "host-local", "subnet": "10.244.1.0/24", "dataDir": cache,
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}}},
	})
	drv := &multus.Driver{
		Client:         d.cp.Client,
		Runtime:        multus.Runtime{BinDirs: binDirs, CacheDir: cache, Exec: &netsim.PluginExec{NS: u.Nodes[0], Stderr: os.Stderr}},
		ClusterNetwork: &multus.Attachment{Network: "kube-system/cluster", Config: cluster},
	}
	res, err := drv.Attach(ctx, pod, netns.Path)
	if err != nil {
		return err
	}
	defer func() {
		if err := drv.Detach(context.Background(), pod, netns.Path); err != nil {
			fmt.Fprintf(os.Stderr, "demo: detaching: %v\n", err)
		}
	}()
	for _, itf := range res.Interfaces {
		var addrs []string
		for _, ipc := range itf.Result.IPs {
			addrs = append(addrs, fmt.Sprintf("%s (gateway %s)", ipc.Address.String(), ipc.Gateway))
		}
		fmt.Printf("%s from %s: %s\n", itf.IfName, itf.Network, strings.Join(addrs, ", "))
	}
	cmds := [][]string{{"ip", "addr"}, {"ip", "route"}, {"ip", "-6", "route"}, {"ip", "rule"}, {"ip", "-6", "rule"}}
	// Interfaces without the default route have a table of their own,
	// numbered 100 + their ifindex.
	for _, itf := range res.Interfaces[1:] {
		out, err := netns.Run(ctx, "cat", "/sys/class/net/"+itf.IfName+"/ifindex")
		if err != nil {
			return err
		}
		var idx int
		if _, err := fmt.Sscan(out, &idx); err == nil {
			table := fmt.Sprint(100 + idx)
			cmds = append(cmds, []string{"ip", "route", "show", "table", table}, []string{"ip", "-6", "route", "show", "table", table})
		}
	}
	for _, cmd := range cmds {
		fmt.Printf("\n$ %s   (inside the pod)\n", strings.Join(cmd, " "))
		out, err := netns.Run(ctx, cmd[0], cmd[1:]...)
		if err != nil {
			return err
		}
		fmt.Print(out)
	}
	fmt.Println()
	if err := netns.Ping(ctx, "10.6.0.1"); err != nil {
		return fmt.Errorf("the pod does not reach its gateway: %w", err)
	}
	fmt.Println("the pod reaches its gateway 10.6.0.1 over net1 and its node 10.6.0.10 over eth0:")
	if err := netns.Ping(ctx, "10.6.0.10"); err != nil {
		return fmt.Errorf("the pod does not reach its node: %w", err)
	}
	fmt.Println("  ping 10.6.0.1 ok, ping 10.6.0.10 ok")
	return nil
}

// pluginDirs finds Berth's CNI plugins (bin/ from `make build`, else built
// now) and the reference plugins of `make bins`.
func pluginDirs(ctx context.Context) ([]string, func(), error) {
	ref, err := controlplane.CNIBinDir()
	if err != nil {
		return nil, nil, err
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	own := filepath.Join(root, "bin")
	if _, err := os.Stat(filepath.Join(own, "berth-coordinator")); err == nil {
		return []string{own, ref}, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "berth-demo-plugins-")
	if err != nil {
		return nil, nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	dirs, err := multus.PluginDirs(bctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return dirs, func() { os.RemoveAll(dir) }, nil
}
