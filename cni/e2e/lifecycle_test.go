package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// debianCNI holds Debian's containernetworking-plugins (spec up to 1.0.0).
const debianCNI = "/usr/lib/cni"

// ADD, CHECK, ADD again, DEL, DEL again and DEL of a pod never added, at
// every spec version: the reference plugins of `make bins` for 1.1.0,
// Debian's for the older versions. The underlay host side is exactly what
// ADD says and is gone after DEL.
func TestLifecycleEverySpecVersion(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	for _, tc := range []struct {
		version string
		debian  bool
	}{
		{"0.3.1", true},
		{"0.4.0", true},
		{"1.0.0", true},
		{"1.1.0", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			rt := runtimeOn(t, node)
			if tc.debian {
				if _, err := os.Stat(filepath.Join(debianCNI, "macvlan")); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatalf("Debian's containernetworking-plugins missing (%v): `make deps`", err)
					}
					t.Skipf("Debian's containernetworking-plugins missing (%v): `make deps`", err)
				}
				rt.BinDirs = []string{binDirs[0], debianCNI}
			}
			coord := map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs, "podCIDRs": podCIDRs, "hijackCIDRs": []string{"169.254.25.10/32"},
				"detectGateway": true, "detectIPConflict": true, "podMACPrefix": "0a:1b", "txQueueLen": 2000, "podRPFilter": 2, "hostRPFilter": 1}
			a := attachment(macvlanChain(tc.version, coord), iface("eth0", true, "10.6.1.30/16", "fd00:6::1:30/64"))
			pod := netsim.NewNS(t, "berth-pod")
			ref := podRef("life")
			ctx := t.Context()
			res, err := rt.Add(ctx, ref, pod.Path, a)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if got := macOf(t, pod, "eth0"); got != "0a:1b:0a:06:01:1e" {
				t.Errorf("eth0 MAC %s, want the prefix and 10.6.1.30: 0a:1b:0a:06:01:1e", got)
			}
			if len(res.Interfaces) > 0 && res.Interfaces[0].Mac != "0a:1b:0a:06:01:1e" {
				t.Errorf("result reports MAC %s, want 0a:1b:0a:06:01:1e", res.Interfaces[0].Mac)
			}
			veth := hostVeth(ref, "eth0")
			equalLists(t, "node rules", rules(t, node, netlink.FAMILY_ALL), []string{
				"1000: to 10.6.1.30/32 lookup 500", "1000: to fd00:6::1:30/128 lookup 500",
			})
			host := append(routeTable(t, node, netlink.FAMILY_V4, 500), routeTable(t, node, netlink.FAMILY_V6, 500)...)
			equalLists(t, "node table 500", host, []string{"10.6.1.30/32 dev " + veth, "fd00:6::1:30/128 via fe80::2 dev " + veth})
			equalLists(t, "pod main table", routeTable(t, pod, netlink.FAMILY_V4, unix.RT_TABLE_MAIN), []string{
				"10.244.0.0/16 via 169.254.200.1 dev veth0",
				"10.6.0.0/16 dev eth0",
				"10.6.0.10/32 via 169.254.200.1 dev veth0",
				"10.96.0.0/16 via 169.254.200.1 dev veth0",
				"169.254.200.1/32 dev veth0",
				"169.254.25.10/32 via 169.254.200.1 dev veth0", // hijacked via the host
				"default via 10.6.0.1 dev eth0",
			})
			equalLists(t, "pod main table (IPv6)", routeTable(t, pod, netlink.FAMILY_V6, unix.RT_TABLE_MAIN), []string{
				"default via fd00:6::1 dev eth0",
				"fd00:6::/64 dev eth0",
				"fd00:6::10/128 via fe80::1 dev veth0",
				"fd00:96::/112 via fe80::1 dev veth0",
			})
			if out, err := pod.Run(ctx, "ip", "-4", "-o", "addr", "show", "dev", "veth0"); err != nil || !strings.Contains(out, "inet 169.254.200.2/32 scope link") {
				t.Errorf("veth0 has no link-local IPv4 address of its own: %v\n%s", err, out)
			}
			for _, c := range []struct {
				ns        *netsim.NS
				path, val string
			}{
				{pod, "/sys/class/net/eth0/tx_queue_len", "2000"},
				{pod, "/proc/sys/net/ipv4/conf/eth0/rp_filter", "2"},
				{pod, "/proc/sys/net/ipv4/conf/all/rp_filter", "2"},
				{node, "/proc/sys/net/ipv4/conf/" + veth + "/rp_filter", "1"},
			} {
				if out, err := c.ns.Run(ctx, "cat", c.path); err != nil || strings.TrimSpace(out) != c.val {
					t.Errorf("%s in %s: %q (%v), want %s", c.path, c.ns.Name, out, err, c.val)
				}
			}
			if tc.version != "0.3.1" {
				if err := rt.Check(ctx, ref, pod.Path, a); err != nil {
					t.Errorf("CHECK after ADD: %v", err)
				}
			}
			// The runtime must not ADD twice; if it does, the chain says no
			// and what the first ADD made still works.
			if _, err := rt.Add(ctx, ref, pod.Path, a); err == nil {
				t.Error("second ADD of the same interface succeeded")
			}
			pingEventually(t, pod, gw4.Addr().String())
			pingEventually(t, pod, "10.6.0.10")
			for i := range 2 {
				if err := rt.Del(ctx, ref, pod.Path, a); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			if hasLink(t, node, veth) || hasLink(t, pod, "eth0") || hasLink(t, pod, "veth0") {
				t.Error("links left after DEL")
			}
			if r := rules(t, node, netlink.FAMILY_ALL); len(r) != 0 {
				t.Errorf("node rules left after DEL: %q", r)
			}
			if r := routeTable(t, node, netlink.FAMILY_V4, 500); len(r) != 0 {
				t.Errorf("node routes left after DEL: %q", r)
			}
			// DEL of a pod never added, with and without its netns.
			never := netsim.NewNS(t, "berth-pod")
			if err := rt.Del(ctx, podRef("never"), never.Path, a); err != nil {
				t.Errorf("DEL of a pod never added: %v", err)
			}
			if err := rt.Del(ctx, podRef("gone"), "/run/netns/berth-does-not-exist", a); err != nil {
				t.Errorf("DEL with a netns that does not exist: %v", err)
			}
		})
	}
}

// berth-ipam alone returns the same result for the same ADD, and DEL
// succeeds for a pod never added: it holds no state on the node.
func TestIPAMIdempotent(t *testing.T) {
	netsim.RequireRoot(t)
	rt := &multus.Runtime{BinDirs: binDirs, CacheDir: t.TempDir()}
	// A bare IPAM configuration, as a runtime would call an IPAM plugin
	// directly; it touches no netns.
	a := multus.Attachment{
		Network: "default/bare", IfName: "net1",
		Config:  []byte(`{"cniVersion":"1.1.0","name":"bare","type":"berth-ipam","ipam":{"type":"berth-ipam"}}`),
		CNIArgs: map[string]any{"berth.io/assignment": iface("net1", false, "10.6.1.40/16")},
	}
	ctx := t.Context()
	first, err := rt.Add(ctx, podRef("ipam"), "/run/netns/unused", a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rt.Add(ctx, podRef("ipam"), "/run/netns/unused", a)
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(first)
	j2, _ := json.Marshal(second)
	if string(j1) != string(j2) || !strings.Contains(string(j1), `"10.6.1.40/16"`) {
		t.Errorf("ADD twice gave %s then %s", j1, j2)
	}
	for range 2 {
		if err := rt.Del(ctx, podRef("ipam"), "/run/netns/unused", a); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	if err := rt.Del(ctx, podRef("never"), "/run/netns/unused", a); err != nil {
		t.Fatalf("DEL of a pod never added: %v", err)
	}
}

// GC removes what a missed DEL left on the node: the rules of a pod whose
// netns went away (its veth went with it) and the veth of a pod the runtime
// no longer lists, and nothing of a valid pod or of another network.
func TestGCRemovesWhatMissedDELsLeft(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	coord := map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs}
	c := macvlanChain("1.1.0", coord)
	other := c
	other.name = "other"
	rt := runtimeOn(t, node)
	ctx := t.Context()
	type pod struct {
		ref  multus.PodRef
		ns   *netsim.NS
		att  multus.Attachment
		addr string
	}
	mk := func(name, addr string, ch chain) pod {
		p := pod{ref: podRef(name), ns: netsim.NewNS(t, "berth-pod"), att: attachment(ch, iface("eth0", true, addr+"/16")), addr: addr}
		if _, err := rt.Add(ctx, p.ref, p.ns.Path, p.att); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := mk("gone", "10.6.1.80", c)         // its netns is deleted without DEL
	unlisted := mk("unlisted", "10.6.1.81", c) // the runtime forgot it
	kept := mk("kept", "10.6.1.82", c)
	foreign := mk("foreign", "10.6.1.83", other)
	if err := gone.ns.Delete(); err != nil {
		t.Fatal(err)
	}
	// A runtime that lost its cache: GC alone must find the leftovers.
	fresh := &multus.Runtime{BinDirs: rt.BinDirs, CacheDir: t.TempDir(), Exec: rt.Exec}
	valid := []types.GCAttachment{{ContainerID: kept.ref.ContainerID(), IfName: "eth0"}}
	if err := fresh.GC(ctx, kept.att, valid); err != nil {
		t.Fatal(err)
	}
	if hasLink(t, node, hostVeth(unlisted.ref, "eth0")) {
		t.Error("the unlisted pod's host veth survived GC")
	}
	if !hasLink(t, node, hostVeth(kept.ref, "eth0")) || !hasLink(t, node, hostVeth(foreign.ref, "eth0")) {
		t.Error("GC removed a valid pod's or another network's veth")
	}
	equalLists(t, "node rules after GC", rules(t, node, netlink.FAMILY_ALL), []string{
		"1000: to 10.6.1.82/32 lookup 500", "1000: to 10.6.1.83/32 lookup 500",
	})
	pingEventually(t, kept.ns, gw4.Addr().String())
	pingEventually(t, kept.ns, "10.6.0.10")
	for _, p := range []pod{unlisted, kept, foreign} {
		if err := rt.Del(ctx, p.ref, p.ns.Path, p.att); err != nil {
			t.Errorf("DEL of %s: %v", p.ref.Name, err)
		}
	}
}

// Pods set up and torn down at the same time on one node, as a kubelet
// does, share the host table and rules without stepping on each other.
func TestConcurrentPods(t *testing.T) {
	u := newUnderlay(t, 1)
	node := u.Nodes[0]
	c := macvlanChain("1.1.0", map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs})
	rt := runtimeOn(t, node)
	const n = 12
	type pod struct {
		ref multus.PodRef
		ns  *netsim.NS
		att multus.Attachment
	}
	pods := make([]pod, n)
	var want []string
	for i := range pods {
		addr := fmt.Sprintf("10.6.4.%d", i+1)
		pods[i] = pod{ref: podRef(fmt.Sprintf("par-%d", i)), ns: netsim.NewNS(t, "berth-pod"), att: attachment(c, iface("eth0", true, addr+"/16"))}
		want = append(want, "1000: to "+addr+"/32 lookup 500")
	}
	run := func(op func(p pod) error) {
		t.Helper()
		errs := make(chan error, n)
		for _, p := range pods {
			go func() { errs <- op(p) }()
		}
		for range pods {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	ctx := t.Context()
	run(func(p pod) error { _, err := rt.Add(ctx, p.ref, p.ns.Path, p.att); return err })
	equalLists(t, "node rules with every pod up", rules(t, node, netlink.FAMILY_ALL), want)
	for _, p := range pods[:3] {
		pingEventually(t, p.ns, "10.6.0.10")
	}
	run(func(p pod) error { return rt.Del(ctx, p.ref, p.ns.Path, p.att) })
	if r := rules(t, node, netlink.FAMILY_ALL); len(r) != 0 {
		t.Errorf("node rules after every DEL: %q", r)
	}
	if r := routeTable(t, node, netlink.FAMILY_V4, 500); len(r) != 0 {
		t.Errorf("node table 500 after every DEL: %q", r)
	}
}
