package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/testutils"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/cni/internal/podclient"
)

const assigned = `{"interface":"net1","network":"default/storage",
 "addresses":[{"address":"10.6.212.101/16","gateway":"10.6.0.1","pool":"storage-v4","allocation":"storage-v4.10.6.212.101"},
              {"address":"fd00:6::65/64","gateway":"fd00:6::1","pool":"storage-v6","allocation":"storage-v6.fd00-6--65"}],
 "routes":[{"dst":"10.7.0.0/16","gw":"10.6.0.254"},{"dst":"10.8.0.0/16"}],
 "dns":{"nameservers":["10.6.0.53"],"search":["storage.local"]},"defaultRoute":true}`

func conf(version string, extra string) []byte {
	return []byte(fmt.Sprintf(`{"cniVersion":%q,"name":"storage","type":"macvlan","ipam":{"type":"berth-ipam"}%s}`, version, extra))
}

func cmdArgs(stdin []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c0ffee", Netns: "/run/netns/x", IfName: "net1",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1", StdinData: stdin}
}

// ADD prints, in the asked spec version, exactly the assignment that came
// in args.cni: both addresses with their gateways, the routes, a default
// route per family (the interface carries it) and DNS.
func TestAddFromArgsEveryVersion(t *testing.T) {
	for _, version := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			p := &Plugin{}
			stdin := conf(version, `,"args":{"cni":{"berth.io/assignment":`+assigned+`}}`)
			r, raw, err := testutils.CmdAddWithArgs(cmdArgs(stdin), func() error { return p.Add(cmdArgs(stdin)) })
			if err != nil {
				t.Fatal(err)
			}
			if r.Version() != version {
				t.Errorf("result version %s, want %s", r.Version(), version)
			}
			res, err := current.NewResultFromResult(r)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ipc := range res.IPs {
				got = append(got, ipc.Address.String()+" gw "+ipc.Gateway.String())
			}
			for _, rt := range res.Routes {
				got = append(got, rt.String())
			}
			want := []string{
				"10.6.212.101/16 gw 10.6.0.1", "fd00:6::65/64 gw fd00:6::1",
				"{Dst:{IP:10.7.0.0 Mask:ffff0000} GW:10.6.0.254 MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}",
				"{Dst:{IP:10.8.0.0 Mask:ffff0000} GW:<nil> MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}",
				"{Dst:{IP:0.0.0.0 Mask:00000000} GW:10.6.0.1 MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}",
				"{Dst:{IP::: Mask:00000000000000000000000000000000} GW:fd00:6::1 MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("result:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(res.DNS.Nameservers) != 1 || res.DNS.Search[0] != "storage.local" {
				t.Errorf("DNS %+v", res.DNS)
			}
			if version == "0.3.1" && !strings.Contains(string(raw), `"version": "4"`) {
				t.Errorf("0.3.1 result lacks the IP version field: %s", raw)
			}
		})
	}
}

// The ips capability, completed by the pool data: prefix length, gateway,
// the pool's routes and DNS; no default route (Multus decides that there).
func TestAddFromIPsCapability(t *testing.T) {
	stdin := conf("1.1.0", `,"runtimeConfig":{"ips":["10.6.212.101","fd00:6::65/64"]},
		"ipam":{"type":"berth-ipam","pools":[
			{"name":"v4","subnet":"10.6.0.0/16","gateway":"10.6.0.1","routes":[{"dst":"10.7.0.0/16","gw":"10.6.0.1"}],"dns":{"nameservers":["10.6.0.53"]}},
			{"name":"v6","subnet":"fd00:6::/64","gateway":"fd00:6::1","dns":{"nameservers":["10.6.0.53","fd00:6::53"]}}]}`)
	p := &Plugin{}
	c, err := parse(cmdArgs(stdin))
	if err != nil {
		t.Fatal(err)
	}
	res, src, err := p.resolve(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if src != SourceIPs || len(res.IPs) != 2 || res.IPs[0].Address.String() != "10.6.212.101/16" || res.IPs[0].Gateway.String() != "10.6.0.1" ||
		res.IPs[1].Gateway.String() != "fd00:6::1" || len(res.Routes) != 1 || len(res.DNS.Nameservers) != 2 {
		out, _ := json.Marshal(res)
		t.Errorf("from %s: %s", src, out)
	}
}

type fakeGetter struct {
	pod *corev1.Pod
	err error
	n   *int
}

func (f fakeGetter) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	*f.n++
	if f.err != nil {
		return nil, f.err
	}
	if f.pod.Namespace != ns || f.pod.Name != name {
		return nil, errors.New("wrong pod")
	}
	return f.pod, nil
}

// Without args.cni or ips, one GET of the pod; its UID must be the one
// the runtime is setting up.
func TestAddFromPod(t *testing.T) {
	full := `{"interfaces":[` + assigned + `]}`
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		err  error
		code uint
		msg  string
	}{
		{"found", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1", Annotations: map[string]string{"berth.io/assignment": full}}}, nil, 0, ""},
		{"other pod of the same name", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-2", Annotations: map[string]string{"berth.io/assignment": full}}}, nil,
			cnierr.PodMismatch, "pod default/web-0 interface net1: the pod read from the API server has uid uid-2, K8S_POD_UID is uid-1"},
		{"no annotation", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1"}}, nil,
			cnierr.NoAssignment, "the pod has no berth.io/assignment annotation"},
		{"no entry for the interface", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1", Annotations: map[string]string{"berth.io/assignment": `{"interfaces":[]}`}}}, nil,
			cnierr.NoAssignment, "annotation berth.io/assignment has no entry for interface net1"},
		{"bad annotation", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1", Annotations: map[string]string{"berth.io/assignment": `{"interfaces":{}}`}}}, nil,
			types.ErrDecodingFailure, "annotation berth.io/assignment"},
		{"API down", nil, errors.New("connection refused"), types.ErrTryAgainLater, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			p := &Plugin{NewGetter: func(path string, timeout time.Duration) podclient.Getter {
				if path != "/etc/berth/kubeconfig" || timeout != 3*time.Second {
					t.Errorf("getter built with %s, %s", path, timeout)
				}
				return fakeGetter{pod: tc.pod, err: tc.err, n: &calls}
			}}
			c, err := parse(cmdArgs(conf("1.1.0", `,"ipam":{"type":"berth-ipam","kubeconfig":"/etc/berth/kubeconfig","apiTimeout":"3s"}`)))
			if err != nil {
				t.Fatal(err)
			}
			res, src, err := p.resolve(context.Background(), c)
			if calls != 1 {
				t.Errorf("%d GETs, want exactly one", calls)
			}
			if tc.code == 0 {
				if err != nil || src != SourceAnnotation || len(res.IPs) != 2 {
					t.Fatalf("got %v from %s, %v", res, src, err)
				}
				return
			}
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Msg, tc.msg) {
				t.Fatalf("got %v, want code %d containing %q", err, tc.code, tc.msg)
			}
		})
	}
}

// args.cni wins over everything and makes no API call.
func TestArgsMakeNoAPICall(t *testing.T) {
	p := &Plugin{NewGetter: func(string, time.Duration) podclient.Getter {
		t.Fatal("an API call with the assignment in args.cni")
		return nil
	}}
	c, err := parse(cmdArgs(conf("1.1.0", `,"ipam":{"type":"berth-ipam","kubeconfig":"/k"},"args":{"cni":{"berth.io/assignment":`+assigned+`}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, src, err := p.resolve(context.Background(), c); err != nil || src != SourceArgs {
		t.Fatalf("from %s: %v", src, err)
	}
}

// CHECK compares prevResult's addresses on the interface with the
// assignment.
func TestCheck(t *testing.T) {
	prev := func(addrs ...string) string {
		ips := []string{}
		for _, a := range addrs {
			ips = append(ips, fmt.Sprintf(`{"address":%q,"interface":0}`, a))
		}
		return `,"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"net1","sandbox":"/run/netns/x"}],"ips":[` + strings.Join(ips, ",") + `]}`
	}
	args := `,"args":{"cni":{"berth.io/assignment":` + assigned + `}}`
	p := &Plugin{}
	ok := cmdArgs(conf("1.1.0", args+prev("10.6.212.101/16", "fd00:6::65/64")))
	if err := testutils.CmdCheckWithArgs(ok, func() error { return p.Check(ok) }); err != nil {
		t.Errorf("CHECK of the assigned addresses: %v", err)
	}
	bad := cmdArgs(conf("1.1.0", args+prev("10.6.212.102/16", "fd00:6::65/64")))
	err := testutils.CmdCheckWithArgs(bad, func() error { return p.Check(bad) })
	var te *types.Error
	if !errors.As(err, &te) || te.Code != cnierr.CheckFailed || !strings.Contains(te.Msg, "10.6.212.102/16") {
		t.Errorf("CHECK of another address: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(conf("1.1.0", `,"args":{"cni":{"berth.io/assignment":`+assigned+`}}`)), "K8S_POD_NAME=a;K8S_POD_NAMESPACE=b")
	f.Add([]byte(conf("0.3.1", `,"runtimeConfig":{"ips":["10.0.0.1"]},"ipam":{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.0.0.0/8"}]}`)), "")
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs string) {
		args := cmdArgs(stdin)
		args.Args = cniArgs
		c, err := parse(args)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code == 0 {
				t.Fatalf("error %v is not a CNI error object", err)
			}
			return
		}
		p := &Plugin{NewGetter: func(string, time.Duration) podclient.Getter {
			return fakeGetter{err: errors.New("no API in fuzzing"), n: new(int)}
		}}
		res, _, err := p.resolve(context.Background(), c)
		if err == nil && len(res.IPs) > 2 {
			t.Fatalf("%d addresses for one interface", len(res.IPs))
		}
	})
}
