package netsim

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// Uplink is the default name of a node's interface on the segment, the
// master of its macvlan pods.
const Uplink = "uplink0"

// UnderlayConfig describes a segment.
type UnderlayConfig struct {
	// Gateway holds the router's addresses on the segment, one per family.
	Gateway []netip.Prefix
	// Nodes holds each node's own addresses on its uplink (may be empty
	// per node); its length is the number of nodes.
	Nodes [][]netip.Prefix
	// Uplink names the nodes' interface on the segment; empty means
	// uplink0. Name it as a Network's master (eth1) to run its NAD.
	Uplink string
}

// Underlay is a simulated L2 segment: a gateway namespace whose bridge br0
// carries the gateway addresses, and node namespaces each joined to the
// bridge by a veth whose node end, the uplink, is up.
type Underlay struct {
	Gateway *NS
	Nodes   []*NS
	Uplink  string
}

// NewUnderlay builds the segment; everything is removed when the test ends.
func NewUnderlay(t testing.TB, cfg UnderlayConfig) *Underlay {
	t.Helper()
	u, err := BuildUnderlay(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Delete(); err != nil {
			t.Errorf("removing the underlay: %v", err)
		}
	})
	return u
}

// BuildUnderlay builds the segment; the caller deletes it. On error
// nothing is left behind.
func BuildUnderlay(ctx context.Context, cfg UnderlayConfig) (u *Underlay, err error) {
	u = &Underlay{Uplink: cfg.Uplink}
	if u.Uplink == "" {
		u.Uplink = Uplink
	}
	defer func() {
		if err != nil {
			_ = u.Delete()
		}
	}()
	if u.Gateway, err = CreateNS(ctx, "berth-gw"); err != nil {
		return nil, err
	}
	gw := u.Gateway
	steps := [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		{"ip", "link", "add", "br0", "type", "bridge"},
		{"ip", "link", "set", "br0", "up"},
	}
	for _, a := range cfg.Gateway {
		steps = append(steps, addrCmd("br0", a))
	}
	if err := runAll(ctx, gw, steps); err != nil {
		return nil, err
	}
	for i, addrs := range cfg.Nodes {
		node, err := CreateNS(ctx, fmt.Sprintf("berth-node%d", i))
		if err != nil {
			return nil, err
		}
		u.Nodes = append(u.Nodes, node)
		port := fmt.Sprintf("port%d", i)
		if _, err := gw.Run(ctx, "ip", "link", "add", port, "type", "veth", "peer", "name", u.Uplink, "netns", node.Name); err != nil {
			return nil, err
		}
		steps := [][]string{
			{"ip", "link", "set", port, "master", "br0"},
			{"ip", "link", "set", port, "up"},
		}
		if err := runAll(ctx, gw, steps); err != nil {
			return nil, err
		}
		nodeSteps := [][]string{{"ip", "link", "set", u.Uplink, "up"}}
		for _, a := range addrs {
			nodeSteps = append(nodeSteps, addrCmd(u.Uplink, a))
		}
		if err := runAll(ctx, node, nodeSteps); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// addrCmd adds an address without duplicate address detection, so that
// IPv6 addresses answer at once.
func addrCmd(dev string, a netip.Prefix) []string {
	cmd := []string{"ip", "addr", "add", a.String(), "dev", dev}
	if !a.Addr().Is4() {
		cmd = append(cmd, "nodad")
	}
	return cmd
}

func runAll(ctx context.Context, n *NS, steps [][]string) error {
	for _, s := range steps {
		if _, err := n.Run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the namespaces of the segment.
func (u *Underlay) Delete() error {
	var first error
	for _, n := range append(u.Nodes, u.Gateway) {
		if n == nil {
			continue
		}
		if err := n.Delete(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
