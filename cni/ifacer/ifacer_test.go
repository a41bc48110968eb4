package ifacer

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

func cmdArgs(stdin string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c0ffee", Netns: "/run/netns/p", IfName: "net1",
		Args:      "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
		StdinData: []byte(stdin)}
}

// A stdin ADD refuses gets the CNI code of its fault and a message naming
// the pod, the interface, the network and the field.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		code        uint
		msg         string
	}{
		{"not JSON", `{"cniVersion":`, types.ErrDecodingFailure,
			"pod default/web-0 interface net1: decoding the berth-ifacer configuration: unexpected end of JSON input"},
		{"wrong field type", `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":"eth1"}`, types.ErrDecodingFailure,
			`pod default/web-0 interface net1: decoding the berth-ifacer configuration of network "storage": json: cannot unmarshal string`},
		{"invalid", `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1"],"vlanID":5000}`, types.ErrInvalidNetworkConfig,
			`pod default/web-0 interface net1: berth-ifacer configuration of network "storage": vlanID: 5000 is outside 0-4094`},
		{"bad option", `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":"lacp_rate=fast"}}`, types.ErrInvalidNetworkConfig,
			`berth-ifacer configuration of network "storage": bond.options: lacp_rate: the kernel refuses it in mode 1 (active-backup)`},
		{"no cniVersion", `{"name":"storage","type":"berth-ifacer","interfaces":["eth1"]}`, types.ErrIncompatibleCNIVersion,
			`pod default/web-0 interface net1: cniVersion "" is not one of [0.3.1 0.4.0 1.0.0 1.1.0]`},
		{"bad prevResult", `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1"],"prevResult":{"ips":"x"}}`, types.ErrDecodingFailure,
			"pod default/web-0 interface net1: decoding prevResult"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(cmdArgs(tc.stdin))
			var te *types.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a CNI error object", err)
			}
			if te.Code != tc.code || !strings.Contains(te.Msg, tc.msg) {
				t.Errorf("code %d %q, want code %d containing %q", te.Code, te.Msg, tc.code, tc.msg)
			}
		})
	}
}

// DEL changes nothing and refuses only what it cannot decode: a pod whose
// ADD failed on its configuration is still torn down.
func TestDel(t *testing.T) {
	p := &Plugin{}
	if err := p.Del(cmdArgs(`{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1"],"vlanID":5000}`)); err != nil {
		t.Errorf("DEL of a configuration ADD refuses: %v", err)
	}
	err := p.Del(cmdArgs(`{"cniVersion":"1.0.0",`))
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrDecodingFailure {
		t.Errorf("DEL of undecodable stdin: %v, want code %d", err, types.ErrDecodingFailure)
	}
}

// ADD's result is prevResult when a plugin ran before, else an empty
// result, in the configuration's cniVersion: never nothing.
func TestResult(t *testing.T) {
	const prev = `{"cniVersion":"%s","interfaces":[{"name":"net1","sandbox":"/run/netns/p"}],"ips":[{%s"address":"10.6.1.5/16","gateway":"10.6.0.1","interface":0}]%s}`
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			// Results of 0.x always carry "dns" and an IP's "version".
			version, dns := "", ""
			if v == "0.3.1" || v == "0.4.0" {
				version, dns = `"version":"4",`, `,"dns":{}`
			}
			for _, tc := range []struct {
				name, prev, want string
			}{
				{"first in the chain", "", `{"cniVersion":"` + v + `"` + dns + `}`},
				{"after another plugin", fmt.Sprintf(prev, v, version, dns), ""},
			} {
				stdin := `{"cniVersion":"` + v + `","name":"storage","type":"berth-ifacer","interfaces":["eth1"]`
				if tc.prev != "" {
					stdin += `,"prevResult":` + tc.prev
				}
				c, err := parse(cmdArgs(stdin + "}"))
				if err != nil {
					t.Fatal(err)
				}
				res, err := result(&c.net)
				if err != nil {
					t.Fatal(err)
				}
				got, err := json.Marshal(res)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				if want == "" {
					want = tc.prev
				}
				if !sameJSON(t, got, []byte(want)) {
					t.Errorf("%s: result\n%s\nwant\n%s", tc.name, got, want)
				}
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
	return reflect.DeepEqual(va, vb)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1"],"vlanID":100}`), "K8S_POD_NAME=a")
	f.Add([]byte(`{"cniVersion":"0.3.1","name":"n","type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":200,"bond":{"name":"bond0","mode":1,"options":"primary=eth1;miimon=100"},
		"prevResult":{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.6.1.5/16"}]}}`), "")
	f.Add([]byte(`{"cniVersion":"1.1.0","type":"berth-ifacer","interfaces":[],"bond":{"mode":9}}`), "IgnoreUnknown=1;K8S_POD_NAMESPACE=x")
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs string) {
		a := cmdArgs("")
		a.StdinData, a.Args = stdin, cniArgs
		c, err := parse(a)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code == 0 || !strings.Contains(te.Msg, " interface net1: ") {
				t.Fatalf("error %v is not a CNI error object naming the subject", err)
			}
			return
		}
		// A configuration that parses can be planned against any node
		// without panicking, and the first ADD prints a result.
		if _, err := plan(&c.cfg, node(veth("eth1", 2, false))); err != nil {
			var ce *conflictError
			if !errors.As(err, &ce) {
				t.Fatalf("plan failed with %T %v, want a conflict naming a field", err, err)
			}
		}
		if _, err := result(&c.net); err != nil {
			t.Fatalf("no result for cniVersion %q: %v", c.net.CNIVersion, err)
		}
	})
}
