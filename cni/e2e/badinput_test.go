package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/tests/netsim"
)

// Every bad input gets a CNI error object on stdout and exit status 1,
// with a code and, once the pod is known, a message naming pod, interface
// and the field at fault.
func TestBadInputsGiveCNIErrors(t *testing.T) {
	netsim.RequireRoot(t)
	pod := netsim.NewNS(t, "berth-pod")
	good := iface("net1", false, "10.6.1.50/16")
	assignmentArgs := func(v any) map[string]any {
		return map[string]any{"cni": map[string]any{"berth.io/assignment": v}}
	}
	ipamConf := func(mod func(m map[string]any)) string {
		m := map[string]any{"cniVersion": "1.1.0", "name": "bad", "type": "macvlan", "ipam": map[string]any{"type": "berth-ipam"}, "args": assignmentArgs(good)}
		if mod != nil {
			mod(m)
		}
		data, _ := json.Marshal(m)
		return string(data)
	}
	prev := map[string]any{
		"cniVersion": "1.1.0",
		"interfaces": []any{map[string]any{"name": "net1", "sandbox": pod.Path}},
		"ips":        []any{map[string]any{"address": "10.6.1.50/16", "gateway": "10.6.0.1", "interface": 0}},
	}
	coordConf := func(mod func(m map[string]any)) string {
		m := map[string]any{"cniVersion": "1.1.0", "name": "bad", "type": "berth-coordinator", "mode": "overlay", "prevResult": prev}
		if mod != nil {
			mod(m)
		}
		data, _ := json.Marshal(m)
		return string(data)
	}
	const podArgs = "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bad;K8S_POD_UID=u1"
	for _, tc := range []struct {
		name, plugin, stdin, cniArgs, netns string
		code                                uint
		contains                            string
	}{
		{"ipam: not JSON", "berth-ipam", "{", podArgs, "", types.ErrDecodingFailure, ""},
		{"ipam: bad pool subnet", "berth-ipam", ipamConf(func(m map[string]any) {
			m["ipam"] = map[string]any{"type": "berth-ipam", "pools": []any{map[string]any{"name": "p", "subnet": "10.6.0.0/33"}}}
		}), podArgs, "", types.ErrInvalidNetworkConfig, `ipam.pools[0].subnet: "10.6.0.0/33" is not a CIDR`},
		{"ipam: bad apiTimeout", "berth-ipam", ipamConf(func(m map[string]any) {
			m["ipam"] = map[string]any{"type": "berth-ipam", "apiTimeout": "soon"}
		}), podArgs, "", types.ErrInvalidNetworkConfig, `ipam.apiTimeout: "soon" is not a duration`},
		{"ipam: assignment address not CIDR", "berth-ipam", ipamConf(func(m map[string]any) {
			bad := iface("net1", false, "10.6.1.50/16")
			bad.Addresses[0].Address = "10.6.1.50"
			m["args"] = assignmentArgs(bad)
		}), podArgs, "", types.ErrInvalidNetworkConfig, `args.cni["berth.io/assignment"]: addresses[0].address: "10.6.1.50" is not an address in CIDR form`},
		{"ipam: assignment with unknown field", "berth-ipam", ipamConf(func(m map[string]any) {
			m["args"] = assignmentArgs(map[string]any{"interface": "net1", "network": "default/x", "adresses": []any{}})
		}), podArgs, "", types.ErrInvalidNetworkConfig, `unknown field "adresses"`},
		{"ipam: assignment of another interface", "berth-ipam", ipamConf(func(m map[string]any) {
			m["args"] = assignmentArgs(iface("net2", false, "10.6.1.50/16"))
		}), podArgs, "", cnierr.NoAssignment, "is the assignment of interface net2, not of net1"},
		{"ipam: no assignment anywhere", "berth-ipam", ipamConf(func(m map[string]any) { delete(m, "args") }), podArgs, "", cnierr.NoAssignment, "no assignment"},
		{"ipam: ips outside every pool", "berth-ipam", ipamConf(func(m map[string]any) {
			delete(m, "args")
			m["runtimeConfig"] = map[string]any{"ips": []string{"192.0.2.7/24"}}
			m["ipam"] = map[string]any{"type": "berth-ipam", "pools": []any{map[string]any{"name": "p", "subnet": "10.6.0.0/16"}}}
		}), podArgs, "", types.ErrInvalidNetworkConfig, "runtimeConfig.ips[0]: 192.0.2.7/24 lies in none of the pools"},
		{"ipam: ips disagree with args.cni", "berth-ipam", ipamConf(func(m map[string]any) {
			m["runtimeConfig"] = map[string]any{"ips": []string{"10.6.1.51/16"}}
			m["ipam"] = map[string]any{"type": "berth-ipam", "pools": []any{map[string]any{"name": "p", "subnet": "10.6.0.0/16"}}}
		}), podArgs, "", types.ErrInvalidNetworkConfig, "disagree with the addresses"},
		{"ipam: malformed CNI_ARGS", "berth-ipam", ipamConf(nil), "K8S_POD_NAME", "", types.ErrInvalidEnvironmentVariables, `CNI_ARGS: element 0 "K8S_POD_NAME" is not KEY=VALUE`},
		{"ipam: default-route-nic not a string", "berth-ipam", ipamConf(func(m map[string]any) {
			m["args"] = map[string]any{"cni": map[string]any{"berth.io/default-route-nic": 7}}
		}), podArgs, "", types.ErrInvalidNetworkConfig, `args.cni["berth.io/default-route-nic"]: not a JSON string`},
		{"coordinator: unknown mode", "berth-coordinator", coordConf(func(m map[string]any) { m["mode"] = "sideways" }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, `mode: "sideways" is not one of auto, underlay, overlay, disabled`},
		{"coordinator: multicast MAC prefix", "berth-coordinator", coordConf(func(m map[string]any) { m["podMACPrefix"] = "01:00" }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, `podMACPrefix: "01:00" has the multicast bit set`},
		{"coordinator: main table as host table", "berth-coordinator", coordConf(func(m map[string]any) { m["hostRuleTable"] = 254 }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, "hostRuleTable: 254 must be"},
		{"coordinator: bad service CIDR", "berth-coordinator", coordConf(func(m map[string]any) { m["serviceCIDRs"] = []string{"10.96.0.0"} }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, `serviceCIDRs[0]: "10.96.0.0" is not a CIDR`},
		{"coordinator: negative timeout", "berth-coordinator", coordConf(func(m map[string]any) { m["detectGatewayTimeout"] = "-1s" }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, `detectGatewayTimeout: "-1s" must be positive`},
		{"coordinator: rp_filter out of range", "berth-coordinator", coordConf(func(m map[string]any) { m["podRPFilter"] = 3 }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, "podRPFilter: 3 must be -1"},
		{"coordinator: no prevResult", "berth-coordinator", coordConf(func(m map[string]any) { delete(m, "prevResult") }), podArgs, pod.Path, types.ErrInvalidNetworkConfig, "got no prevResult"},
		{"coordinator: no address for the interface", "berth-coordinator", coordConf(func(m map[string]any) {
			m["prevResult"] = map[string]any{"cniVersion": "1.1.0", "interfaces": []any{map[string]any{"name": "net1", "sandbox": pod.Path}}}
		}), podArgs, pod.Path, types.ErrInvalidNetworkConfig, "prevResult has no address for interface net1"},
		{"coordinator: netns missing", "berth-coordinator", coordConf(nil), podArgs, "/run/netns/berth-does-not-exist", types.ErrInvalidNetNS, "opening netns /run/netns/berth-does-not-exist"},
		{"coordinator: bad assignment in args", "berth-coordinator", coordConf(func(m map[string]any) {
			m["args"] = assignmentArgs(map[string]any{"interface": "net1"})
		}), podArgs, pod.Path, types.ErrInvalidNetworkConfig, `args.cni["berth.io/assignment"]: network: must be namespace/name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netns := tc.netns
			if netns == "" {
				netns = pod.Path
			}
			te, stdout := runPlugin(t, tc.plugin, "ADD", tc.stdin, tc.cniArgs, netns)
			if te.Code != tc.code || !strings.Contains(te.Msg, tc.contains) {
				t.Fatalf("got code %d %q, want code %d containing %q\nstdout: %s", te.Code, te.Msg, tc.code, tc.contains, stdout)
			}
			if tc.code != types.ErrDecodingFailure && !strings.Contains(te.Msg, "pod default/bad interface net1") && !strings.Contains(te.Msg, "CNI_ARGS") {
				t.Errorf("message %q does not name the pod and interface", te.Msg)
			}
		})
	}
}

// runPlugin runs a built plugin and returns the error object it printed.
func runPlugin(t *testing.T, plugin, command, stdin, cniArgs, netns string) (*types.Error, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDirs[0], plugin))
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID=bad0123456789", "CNI_NETNS="+netns,
		"CNI_IFNAME=net1", "CNI_PATH="+strings.Join(binDirs, ":"), "CNI_ARGS="+cniArgs)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	if err == nil {
		t.Fatalf("%s %s succeeded: %s", plugin, command, out.String())
	}
	te := &types.Error{}
	if jerr := json.Unmarshal(out.Bytes(), te); jerr != nil || te.Code == 0 {
		t.Fatalf("%s %s printed no CNI error object (%v): %s", plugin, command, jerr, out.String())
	}
	return te, out.String()
}
