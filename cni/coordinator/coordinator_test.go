package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-io/berth/cni/internal/podclient"
)

func TestMACFromPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix []byte
		addr   string
		want   string
	}{
		{[]byte{0x0a, 0x1b}, "10.6.212.101", "0a:1b:0a:06:d4:65"},
		{[]byte{0x0a}, "10.6.212.101", "0a:00:0a:06:d4:65"},
		{[]byte{0x0a, 0x1b}, "fd00:6::1:65", "0a:1b:00:01:00:65"},
		{[]byte{0x0a}, "fd00:6::ab:1:65", "0a:ab:00:01:00:65"},
	} {
		if got := macFromPrefix(tc.prefix, netip.MustParseAddr(tc.addr)).String(); got != tc.want {
			t.Errorf("macFromPrefix(%x, %s) = %s, want %s", tc.prefix, tc.addr, got, tc.want)
		}
	}
}

func TestHostVethName(t *testing.T) {
	a, b := hostVethName("c1", "eth0"), hostVethName("c2", "eth0")
	if len(a) != 15 || !strings.HasPrefix(a, HostVethPrefix) || a == b || a != hostVethName("c1", "eth0") {
		t.Errorf("names %q %q: want 15 characters, stable, distinct per container", a, b)
	}
}

const prev = `"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"net1","sandbox":"/run/netns/p"},{"name":"net2","sandbox":"/run/netns/p"}],
 "ips":[{"address":"10.6.1.5/16","gateway":"10.6.0.1","interface":0},{"address":"fd00:6::5/64","interface":0},{"address":"10.7.1.5/16","interface":1}]}`

func args(ifName, extra string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c", Netns: "/run/netns/p", IfName: ifName,
		Args:      "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1",
		StdinData: []byte(`{"cniVersion":"1.1.0","name":"n","type":"berth-coordinator",` + prev + extra + `}`)}
}

func TestNICOf(t *testing.T) {
	c, err := parse(args("net1", ""))
	if err != nil {
		t.Fatal(err)
	}
	n, err := nicOf(c.prev, "net1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(n.addrs) != "[10.6.1.5/16 fd00:6::5/64]" || n.gateways[true].String() != "10.6.0.1" || n.gateways[false].IsValid() {
		t.Errorf("net1: %v %v", n.addrs, n.gateways)
	}
	if n, err := nicOf(c.prev, "net2"); err != nil || fmt.Sprint(n.addrs) != "[10.7.1.5/16]" {
		t.Errorf("net2: %v %v", n, err)
	}
	if _, err := nicOf(c.prev, "net3"); err == nil || !strings.Contains(err.Error(), "prevResult has no address for interface net3") {
		t.Errorf("net3: %v", err)
	}
}

type fakeGetter struct {
	pod *corev1.Pod
	n   *int
}

func (f fakeGetter) GetPod(context.Context, string, string) (*corev1.Pod, error) {
	*f.n++
	return f.pod, nil
}

// Who carries the default route, in the order the sources are consulted.
func TestCarriesDefault(t *testing.T) {
	pod := func(annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1", Annotations: annotations}}
	}
	assign := `{"interfaces":[{"interface":"net1","network":"d/n"},{"interface":"net2","network":"d/n","defaultRoute":true}]}`
	for _, tc := range []struct {
		name, ifName, extra string
		pod                 *corev1.Pod
		want                bool
		gets                int
	}{
		{"eth0 by default", "eth0", "", nil, true, 0},
		{"not net1 by default", "net1", "", nil, false, 0},
		{"args default-route-nic", "net1", `,"args":{"cni":{"berth.io/default-route-nic":"net1"}}`, nil, true, 0},
		{"args default-route-nic elsewhere", "eth0", `,"args":{"cni":{"berth.io/default-route-nic":"net1"}}`, nil, false, 0},
		{"assignment says so", "net1", `,"args":{"cni":{"berth.io/assignment":{"interface":"net1","network":"d/n","defaultRoute":true}}}`, nil, true, 0},
		{"assignment says not", "eth0", `,"args":{"cni":{"berth.io/assignment":{"interface":"eth0","network":"d/n"}}}`, nil, false, 0},
		{"config", "net1", `,"podDefaultRouteNIC":"net1"`, nil, true, 0},
		{"pod assignment", "net2", `,"kubeconfig":"/k"`, pod(map[string]string{"berth.io/assignment": assign}), true, 1},
		{"pod annotation", "net1", `,"kubeconfig":"/k"`, pod(map[string]string{"berth.io/default-route-nic": "net1"}), true, 1},
		{"pod says nothing", "net1", `,"kubeconfig":"/k"`, pod(nil), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gets := 0
			p := &Plugin{NewGetter: func(string, time.Duration) podclient.Getter { return fakeGetter{pod: tc.pod, n: &gets} }}
			c, err := parse(args(tc.ifName, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.carriesDefault(context.Background(), c)
			if err != nil || got != tc.want || gets != tc.gets {
				t.Errorf("got %v (%v) after %d GETs, want %v after %d", got, err, gets, tc.want, tc.gets)
			}
		})
	}
	p := &Plugin{NewGetter: func(string, time.Duration) podclient.Getter {
		return fakeGetter{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid-2"}}, n: new(int)}
	}}
	c, _ := parse(args("net1", `,"kubeconfig":"/k"`))
	_, err := p.carriesDefault(context.Background(), c)
	var te *types.Error
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "has uid uid-2, K8S_POD_UID is uid-1") {
		t.Errorf("a pod with another UID: %v", err)
	}
}

func TestMode(t *testing.T) {
	for _, tc := range []struct{ ifName, mode, want string }{
		{"eth0", "auto", "underlay"}, {"net1", "auto", "overlay"},
		{"net1", "underlay", "underlay"}, {"eth0", "overlay", "overlay"},
	} {
		c, err := parse(args(tc.ifName, fmt.Sprintf(`,"mode":%q`, tc.mode)))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.mode(); got != tc.want {
			t.Errorf("%s in %s mode: %s, want %s", tc.ifName, tc.mode, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(args("net1", `,"mode":"overlay","podMACPrefix":"0a:1b"`).StdinData, "K8S_POD_NAME=a")
	f.Add([]byte(`{"cniVersion":"0.4.0","name":"n","type":"berth-coordinator","args":{"cni":{"berth.io/default-route-nic":"net1"}}}`), "")
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs string) {
		a := args("net1", "")
		a.StdinData, a.Args = stdin, cniArgs
		c, err := parse(a)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code == 0 {
				t.Fatalf("error %v is not a CNI error object", err)
			}
			return
		}
		if c.prev != nil {
			if n, err := nicOf(c.prev, "net1"); err == nil && len(n.addrs) > 2 {
				t.Fatalf("%d addresses", len(n.addrs))
			}
		}
	})
}
