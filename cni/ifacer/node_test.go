package ifacer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/tests/netsim"
)

// These tests run the built berth-ifacer as a runtime does, with a fresh
// network namespace standing in for the node (the plugin's process is
// started inside it) and another for the pod.

var versions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// testNode is a node namespace and a switch namespace its interfaces are
// cabled to.
type testNode struct {
	*netsim.NS
	sw *netsim.NS
}

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	netsim.RequireRoot(t)
	return &testNode{NS: netsim.NewNS(t, "berth-ifnode"), sw: netsim.NewNS(t, "berth-ifsw")}
}

// ip runs the ip tool in n.
func ip(t *testing.T, n *netsim.NS, args ...string) {
	t.Helper()
	if _, err := n.Run(context.Background(), "ip", args...); err != nil {
		t.Fatal(err)
	}
}

// cable gives the node an interface name whose other end, port, is up in
// the switch namespace.
func (n *testNode) cable(t *testing.T, name, port string) {
	t.Helper()
	ip(t, n.NS, "link", "add", name, "type", "veth", "peer", "name", port, "netns", n.sw.Name)
	ip(t, n.sw, "link", "set", port, "up")
}

// exec runs berth-ifacer's command in the node for a pod namespace.
func (n *testNode) exec(t *testing.T, command, stdin string, pod *netsim.NS) (types.Result, error) {
	t.Helper()
	args := &invoke.Args{Command: command, ContainerID: "ctr-" + filepath.Base(pod.Path), NetNS: pod.Path, IfName: "net1",
		PluginArgsStr: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0", Path: pluginDir(t)}
	path := filepath.Join(pluginDir(t), cniconf.IfacerType)
	ex := &netsim.PluginExec{NS: n.NS}
	if command == "ADD" {
		return invoke.ExecPluginWithResult(t.Context(), path, []byte(stdin), args, ex)
	}
	return nil, invoke.ExecPluginWithoutResult(t.Context(), path, []byte(stdin), args, ex)
}

func ifacerConf(version string, fields string) string {
	return `{"cniVersion":"` + version + `","name":"storage","type":"berth-ifacer",` + fields + `}`
}

// linkInfo is what the tests compare of a node's link.
type linkInfo struct {
	Name, Kind, Master string
	Index              int
	Up                 bool
	VLANID             int
	Parent             string
	Bond               *netlink.Bond
}

// links reads the node's links by name.
func links(t *testing.T, n *netsim.NS) map[string]linkInfo {
	t.Helper()
	out := map[string]linkInfo{}
	err := n.Do(func() error {
		all, err := netlinksafe.LinkList()
		if err != nil {
			return err
		}
		name := func(index int) string {
			for _, l := range all {
				if l.Attrs().Index == index {
					return l.Attrs().Name
				}
			}
			return ""
		}
		for _, l := range all {
			a := l.Attrs()
			li := linkInfo{Name: a.Name, Kind: l.Type(), Index: a.Index, Up: a.Flags&net.FlagUp != 0, Master: name(a.MasterIndex)}
			switch v := l.(type) {
			case *netlink.Vlan:
				li.VLANID, li.Parent = v.VlanId, name(a.ParentIndex)
			case *netlink.Bond:
				li.Bond = v
			}
			out[a.Name] = li
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing links of %s: %v", n.Name, err)
	}
	return out
}

// summary is links without what changes by itself (bond statistics).
func summary(m map[string]linkInfo) []string {
	var out []string
	for _, l := range m {
		out = append(out, fmt.Sprintf("%s %s up=%v master=%s vlan=%d parent=%s index=%d", l.Name, l.Kind, l.Up, l.Master, l.VLANID, l.Parent, l.Index))
	}
	sort.Strings(out)
	return out
}

// setupFailed asserts err is berth-ifacer's CNI error of code 105 and
// message containing want.
func setupFailed(t *testing.T, err error, want string) {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("want a CNI error object, got %T: %v", err, err)
	}
	if te.Code != cnierr.SetupFailed || !strings.Contains(te.Msg, want) {
		t.Errorf("error code %d %q, want code %d containing %q", te.Code, te.Msg, cnierr.SetupFailed, want)
	}
	if !strings.HasPrefix(te.Msg, "pod default/web-0 interface net1: ") {
		t.Errorf("error %q does not name the pod and interface", te.Msg)
	}
}

func TestVersion(t *testing.T) {
	netsim.RequireRoot(t)
	info, err := invoke.GetVersionInfo(t.Context(), filepath.Join(pluginDir(t), cniconf.IfacerType), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.SupportedVersions(); !slices.Equal(got, versions) {
		t.Errorf("VERSION answers %v, want %v", got, versions)
	}
}

// A master that exists is kept (same interface, same kind) and brought up
// if down; ADD prints prevResult unchanged, or an empty result of the
// configuration's version when it is first. DEL leaves the master.
func TestExistingMasterKept(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			n := newTestNode(t)
			pod := netsim.NewNS(t, "berth-ifpod")
			n.cable(t, "eth1", "port1")
			before := links(t, n.NS)["eth1"]
			if before.Up {
				t.Fatal("eth1 should start down")
			}
			conf := ifacerConf(v, `"interfaces":["eth1"]`)
			res, err := n.exec(t, "ADD", conf, pod)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			raw, _ := json.Marshal(res)
			want := `{"cniVersion":"` + v + `"}`
			if v == "0.3.1" || v == "0.4.0" {
				want = `{"cniVersion":"` + v + `","dns":{}}`
			}
			if string(raw) != want {
				t.Errorf("first in the chain: result %s, want %s", raw, want)
			}
			after := links(t, n.NS)["eth1"]
			if after.Index != before.Index || after.Kind != "veth" || !after.Up {
				t.Errorf("eth1 after ADD: %+v, want the same veth (index %d), up", after, before.Index)
			}

			prev := `{"cniVersion":"` + v + `","interfaces":[{"name":"net1","sandbox":"` + pod.Path + `"}],"ips":[{"address":"10.6.1.5/16","gateway":"10.6.0.1","interface":0}]}`
			if v == "0.3.1" || v == "0.4.0" {
				prev = strings.Replace(prev, `{"address"`, `{"version":"4","address"`, 1)
			}
			res, err = n.exec(t, "ADD", strings.TrimSuffix(conf, "}")+`,"prevResult":`+prev+`}`, pod)
			if err != nil {
				t.Fatalf("ADD with prevResult: %v", err)
			}
			raw, _ = json.Marshal(res)
			if !sameJSON(t, raw, []byte(prev)) {
				t.Errorf("prevResult not passed through:\n%s\nwant\n%s", raw, prev)
			}
			if _, err := n.exec(t, "DEL", conf, pod); err != nil {
				t.Errorf("DEL: %v", err)
			}
			if l, ok := links(t, n.NS)["eth1"]; !ok || l.Index != before.Index || !l.Up {
				t.Errorf("eth1 after DEL: %+v, want it kept and up", l)
			}
		})
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	if m, ok := va.(map[string]any); ok {
		if d, ok := m["dns"].(map[string]any); ok && len(d) == 0 {
			delete(m, "dns") // 0.x results always write an empty dns
		}
	}
	return reflect.DeepEqual(va, vb)
}

// An interface of the node in the way is named in the error (code 105),
// and the node is left exactly as it was.
func TestConflictsNamed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, n *testNode)
		fields string
		want   string
	}{
		{"VLAN name taken by a veth", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
			n.cable(t, "eth1.100", "port2")
		}, `"interfaces":["eth1"],"vlanID":100`, "vlanID: eth1.100 exists on the node and is a veth, not a VLAN"},
		{"bond name taken by a veth", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
			n.cable(t, "eth2", "port2")
			n.cable(t, "bond0", "port3")
		}, `"interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1}`, "bond.name: bond0 exists on the node and is a veth, not a bond"},
		{"bond name taken by a bridge", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
			ip(t, n.NS, "link", "add", "bond0", "type", "bridge")
		}, `"interfaces":["eth1"],"vlanID":5,"bond":{"name":"bond0","mode":1}`, "bond.name: bond0 exists on the node and is a bridge, not a bond"},
		{"member in a bridge", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
			n.cable(t, "eth2", "port2")
			ip(t, n.NS, "link", "add", "br9", "type", "bridge")
			ip(t, n.NS, "link", "set", "eth2", "master", "br9")
		}, `"interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1}`, "interfaces[1]: eth2 is enslaved to br9, not to bond0"},
		{"member the node uses", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
			n.cable(t, "eth2", "port2")
			ip(t, n.NS, "addr", "add", "10.99.0.10/24", "dev", "eth1")
		}, `"interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1}`, "interfaces[0]: eth1 has address 10.99.0.10/24: berth-ifacer does not enslave an interface the node uses"},
		{"interface missing", func(t *testing.T, n *testNode) {
			n.cable(t, "eth1", "port1")
		}, `"interfaces":["eth1","eth9"],"bond":{"name":"bond0","mode":1}`, "interfaces[1]: eth9 does not exist on the node"},
		{"VLAN parent missing", func(*testing.T, *testNode) {}, `"interfaces":["eth1"],"vlanID":100`, "interfaces[0]: eth1 does not exist on the node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t)
			pod := netsim.NewNS(t, "berth-ifpod")
			tc.setup(t, n)
			before := summary(links(t, n.NS))
			_, err := n.exec(t, "ADD", ifacerConf("1.0.0", tc.fields), pod)
			setupFailed(t, err, tc.want)
			if after := summary(links(t, n.NS)); !slices.Equal(after, before) {
				t.Errorf("the node changed:\n  %s\nwas\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
			}
		})
	}
}

// A step that fails halfway undoes the steps before it. lo carries no
// VLAN on any kernel (and this one may have no VLANs at all): ADD brings
// lo up, fails to create lo.7, and sets lo down again.
func TestFailedADDUndoes(t *testing.T) {
	n := newTestNode(t)
	pod := netsim.NewNS(t, "berth-ifpod")
	ip(t, n.NS, "link", "set", "lo", "down")
	before := summary(links(t, n.NS))
	_, err := n.exec(t, "ADD", ifacerConf("1.1.0", `"interfaces":["lo"],"vlanID":7`), pod)
	setupFailed(t, err, `network "storage": making master lo.7 on the node: create VLAN lo.7 (id 7) on lo: operation not supported`)
	if after := summary(links(t, n.NS)); !slices.Equal(after, before) {
		t.Errorf("the node after the failed ADD:\n  %s\nwant as it was\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
	}
}

// CHECK passes while the master is up and names what is missing once it
// is not; CHECK is not part of 0.3.1.
func TestCheckOnNode(t *testing.T) {
	n := newTestNode(t)
	pod := netsim.NewNS(t, "berth-ifpod")
	n.cable(t, "eth1", "port1")
	conf := ifacerConf("1.0.0", `"interfaces":["eth1"]`)
	if _, err := n.exec(t, "ADD", conf, pod); err != nil {
		t.Fatal(err)
	}
	if _, err := n.exec(t, "CHECK", conf, pod); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	ip(t, n.NS, "link", "set", "eth1", "down")
	_, err := n.exec(t, "CHECK", conf, pod)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != cnierr.CheckFailed || !strings.HasSuffix(te.Msg, `network "storage": master eth1: eth1 is down`) {
		t.Errorf("CHECK with eth1 down: %v, want code %d saying eth1 is down", err, cnierr.CheckFailed)
	}
	ip(t, n.NS, "link", "del", "eth1")
	_, err = n.exec(t, "CHECK", conf, pod)
	if !errors.As(err, &te) || te.Code != cnierr.CheckFailed || !strings.HasSuffix(te.Msg, "interfaces[0]: eth1 does not exist on the node") {
		t.Errorf("CHECK with eth1 gone: %v", err)
	}
}

// chainConf is a Network's conflist as the renderer writes it for a
// macvlan master made by berth-ifacer, with static IPAM standing in for
// berth-ipam.
func chainConf(version, ifacerFields, master, address string) []byte {
	return []byte(`{"cniVersion":"` + version + `","name":"storage","plugins":[` +
		`{"type":"berth-ifacer",` + ifacerFields + `},` +
		`{"type":"macvlan","master":"` + master + `","mode":"bridge","ipam":{"type":"static","addresses":[{"address":"` + address + `"}]}}]}`)
}

// runtime runs conflists in the node the way libcni does for a runtime,
// with berth-ifacer and the reference plugins.
func (n *testNode) runtime(t *testing.T) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{pluginDir(t), referenceDir(t)}, t.TempDir(), &netsim.PluginExec{NS: n.NS})
}

type attached struct {
	pod  *netsim.NS
	rt   *libcni.RuntimeConf
	list *libcni.NetworkConfigList
}

// newAttachment prepares a pod for the conflist; add runs its ADD and, once
// that succeeded, its DEL when the test ends.
func newAttachment(t *testing.T, conf []byte) *attached {
	t.Helper()
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil {
		t.Fatal(err)
	}
	pod := netsim.NewNS(t, "berth-ifpod")
	return &attached{pod: pod, list: list, rt: &libcni.RuntimeConf{ContainerID: "ctr-" + filepath.Base(pod.Path), NetNS: pod.Path, IfName: "net1"}}
}

// add may run on any goroutine: it reports instead of failing the test.
func (a *attached) add(t *testing.T, cni *libcni.CNIConfig) error {
	if _, err := cni.AddNetworkList(t.Context(), a.list, a.rt); err != nil {
		return fmt.Errorf("ADD of %s: %w", a.pod.Name, err)
	}
	t.Cleanup(func() {
		if err := cni.DelNetworkList(context.Background(), a.list, a.rt); err != nil {
			t.Errorf("DEL of %s: %v", a.pod.Name, err)
		}
	})
	return nil
}

// addAll runs the ADDs of all at once, as a runtime does for a burst of
// pods on one node.
func addAll(t *testing.T, cni *libcni.CNIConfig, all []*attached) {
	t.Helper()
	errs := make(chan error, len(all))
	for _, a := range all {
		go func() { errs <- a.add(t, cni) }()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// pingEventually pings addr from the pod until it answers: a bond reports
// its carrier only after its first MII poll.
func pingEventually(t *testing.T, pod *netsim.NS, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if _, err = pod.Run(ctx, "ping", "-c", "1", "-W", "1", addr); err == nil {
			return
		}
	}
	t.Errorf("%s never answered from %s: %v", addr, pod.Name, err)
}

// berth-ifacer first, macvlan on the master it keeps, at every spec
// version: pods reach the segment, several ADDs at once all succeed, CHECK
// passes, and DEL leaves the master for the other pods.
func TestChainWithMacvlan(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			n := newTestNode(t)
			cni := n.runtime(t)
			n.cable(t, "eth1", "port1")
			ip(t, n.sw, "addr", "add", "10.6.0.1/16", "dev", "port1")
			before := links(t, n.NS)["eth1"]

			var all []*attached
			for i := 0; i < 6; i++ {
				all = append(all, newAttachment(t, chainConf(v, `"interfaces":["eth1"]`, "eth1", fmt.Sprintf("10.6.1.%d/16", 10+i))))
			}
			addAll(t, cni, all)
			if l := links(t, n.NS)["eth1"]; l.Index != before.Index || !l.Up {
				t.Errorf("eth1 after ADD: %+v, want the same interface, up", l)
			}
			for _, a := range all {
				pingEventually(t, a.pod, "10.6.0.1")
				if v != "0.3.1" {
					if err := cni.CheckNetworkList(t.Context(), a.list, a.rt); err != nil {
						t.Errorf("CHECK: %v", err)
					}
				}
			}
			// DEL of one pod leaves the master to the others.
			if err := cni.DelNetworkList(t.Context(), all[0].list, all[0].rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if l := links(t, n.NS)["eth1"]; l.Index != before.Index || !l.Up {
				t.Errorf("eth1 after DEL: %+v, want it kept and up", l)
			}
			pingEventually(t, all[1].pod, "10.6.0.1")
		})
	}
}
