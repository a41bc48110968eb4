package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/berth-io/berth/tests/netsim"
)

// Pods on two nodes get macvlan interfaces as eth0 with dual-stack
// assignments, and reach each other, the gateway, their node and a
// stand-in ClusterIP held by the node.
func TestUnderlayDualStackAcrossNodes(t *testing.T) {
	u := newUnderlay(t, 2)
	ctx := t.Context()
	// The node answers for 10.96.0.10, standing in for a ClusterIP that
	// kube-proxy would translate on the node.
	for _, n := range u.Nodes {
		if _, err := n.Run(ctx, "ip", "addr", "add", "10.96.0.10/32", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Run(ctx, "ip", "addr", "add", "fd00:96::10/128", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
	}
	coord := map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs, "podCIDRs": podCIDRs}
	c := macvlanChain("1.1.0", coord)
	pods := []struct {
		name  string
		node  int
		addrs []string
	}{
		{"web-a", 0, []string{"10.6.1.1/16", "fd00:6::1:1/64"}},
		{"web-b", 1, []string{"10.6.1.2/16", "fd00:6::1:2/64"}},
	}
	var nss []*netsim.NS
	for _, p := range pods {
		pod := netsim.NewNS(t, "berth-pod")
		nss = append(nss, pod)
		mustAdd(t, runtimeOn(t, u.Nodes[p.node]), podRef(p.name), pod, attachment(c, iface("eth0", true, p.addrs...)))
	}
	for _, target := range []string{"10.6.1.2", "fd00:6::1:2", gw4.Addr().String(), gw6.Addr().String(), "10.96.0.10", "fd00:96::10", "10.6.0.10", "fd00:6::10"} {
		pingEventually(t, nss[0], target)
	}
	for _, target := range []string{"10.6.1.1", "fd00:6::1:1", gw4.Addr().String(), gw6.Addr().String(), "10.96.0.10", "10.6.0.11"} {
		pingEventually(t, nss[1], target)
	}
}

// pingEventually allows for IPv6 duplicate address detection on the far
// side, which the pod does not wait for.
func pingEventually(t *testing.T, from *netsim.NS, target string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := from.Ping(context.Background(), target)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			out, _ := from.Run(context.Background(), "sh", "-c", "ip addr; ip route; ip -6 route; ip rule")
			t.Fatalf("ping %s from %s: %v\n%s", target, from.Name, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
