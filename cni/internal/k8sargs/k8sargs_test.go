package k8sargs

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParsePod(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Pod
		err  string
	}{
		{"", Pod{}, ""},
		{"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
			Pod{Namespace: "default", Name: "web-0", UID: "u-1", InfraContainerID: "abc"}, ""},
		{"K8S_POD_NAME=a=b;;", Pod{Name: "a=b"}, ""},
		{"K8S_POD_NAME", Pod{}, `CNI_ARGS: element 0 "K8S_POD_NAME" is not KEY=VALUE`},
		{"K8S_POD_NAME=a;K8S_POD_NAME=b", Pod{}, "CNI_ARGS: K8S_POD_NAME appears twice"},
	} {
		got, err := ParsePod(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParsePod(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePod(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		check         func(Args) bool
	}{
		{"absent", `{}`, "", func(a Args) bool { return a.Assignment == nil && a.DefaultRouteNIC == "" }},
		{"null values", `{"cni":{"berth.io/assignment":null,"berth.io/default-route-nic":null}}`, "", func(a Args) bool { return a.Assignment == nil }},
		{"other keys left alone", `{"cni":{"other.io/x":{"y":1}}}`, "", func(a Args) bool { return a.Assignment == nil }},
		{"both", `{"cni":{"berth.io/default-route-nic":"net1","berth.io/assignment":{"interface":"net1","network":"default/storage",
			"addresses":[{"address":"10.6.212.101/16","gateway":"10.6.0.1","pool":"p","allocation":"p.10.6.212.101"}],"defaultRoute":true}}}`, "",
			func(a Args) bool {
				return a.DefaultRouteNIC == "net1" && a.Assignment.Interface == "net1" && a.Assignment.DefaultRoute && a.Assignment.Addresses[0].Gateway == "10.6.0.1"
			}},
		{"assignment not an object", `{"cni":{"berth.io/assignment":"net1"}}`, `args.cni["berth.io/assignment"]: not valid JSON of the expected shape`, nil},
		{"assignment invalid", `{"cni":{"berth.io/assignment":{"interface":"net1","network":"d/s","addresses":[{"address":"10.6.0.1/16","gateway":"fd00::1","pool":"p"}]}}}`,
			`args.cni["berth.io/assignment"]: addresses[0].gateway: fd00::1 is not of the family of 10.6.0.1/16`, nil},
		{"nic not a string", `{"cni":{"berth.io/default-route-nic":1}}`, `args.cni["berth.io/default-route-nic"]: not a JSON string`, nil},
		{"nic invalid", `{"cni":{"berth.io/default-route-nic":"this-name-is-too-long"}}`, `args.cni["berth.io/default-route-nic"]: "this-name-is-too-long" must be 1 to 15 characters`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := &RawArgs{}
			if err := json.Unmarshal([]byte(tc.in), raw); err != nil {
				t.Fatal(err)
			}
			got, err := ParseArgs(raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(got) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
	if a, err := ParseArgs(nil); err != nil || a.Assignment != nil {
		t.Errorf("ParseArgs(nil) = %+v, %v", a, err)
	}
}

func FuzzParsePod(f *testing.F) {
	f.Add("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u")
	f.Add("K8S_POD_NAME=;=;;")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePod(s)
		if err == nil && strings.Contains(p.Name, ";") {
			t.Fatalf("name %q holds a separator", p.Name)
		}
	})
}

func FuzzParseArgs(f *testing.F) {
	f.Add(`{"cni":{"berth.io/default-route-nic":"net1","berth.io/assignment":{"interface":"net1","network":"default/s","addresses":[{"address":"10.6.0.5/16","pool":"p"}]}}}`)
	f.Add(`{"cni":{"berth.io/assignment":{"interface":"eth0","network":"a/b","routes":[{"dst":"::/0","gw":"fd00::1"}],"mac":"0a:1b:00:00:00:01"}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		raw := &RawArgs{}
		if json.Unmarshal([]byte(s), raw) != nil {
			return
		}
		a, err := ParseArgs(raw)
		if err == nil && a.Assignment != nil && a.Assignment.Validate("") != nil {
			t.Fatalf("accepted an invalid assignment from %s", s)
		}
	})
}
