package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// FuzzRequestedNetworksOf: any pair of Multus annotations gives either an
// error or requests with unique, valid interface names and namespace/name
// networks.
func FuzzRequestedNetworksOf(f *testing.F) {
	f.Add("storage", "")
	f.Add("storage, other/mgmt@mgmt0, storage", "kube-system/uplink")
	f.Add(`[{"name":"a","interface":"net2"},{"name":"b"}]`, "")
	f.Add(`[{"name":"a","ips":["10.0.0.1/24"],"mac":"0a:00:00:00:00:01","default-route":["10.0.0.254"]}]`, "ns/x@eth0")
	f.Add("a@net2, b", "")
	f.Add("a@eth0", "b")
	f.Add("", "a, b")
	f.Fuzz(func(t *testing.T, networks, defaultNetwork string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Annotations: map[string]string{nadv1.NetworksAnnotation: networks}}}
		if defaultNetwork != "" {
			pod.Annotations[nadv1.DefaultNetworkAnnotation] = defaultNetwork
		}
		reqs, err := RequestedNetworksOf(pod)
		if err != nil {
			if !strings.Contains(err.Error(), "annotation ") {
				t.Fatalf("the error does not name the annotation: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for i, r := range reqs {
			if err := nadv1.ValidateInterfaceName(r.Interface); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if seen[r.Interface] {
				t.Fatalf("interface %s twice in %+v", r.Interface, reqs)
			}
			seen[r.Interface] = true
			if err := validNetwork(r.Network); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if r.Default != (r.Interface == DefaultInterface && i == 0 && defaultNetwork != "") {
				t.Fatalf("request %d: default %v for interface %s", i, r.Default, r.Interface)
			}
		}
	})
}

// FuzzParsePartial: whatever JSON a policy produces is either refused with
// an error or a partial attachment with a valid interface.
func FuzzParsePartial(f *testing.F) {
	f.Add(`{"interface":"net1","network":"ns/a","ipv4":["p"],"ipv6":[],"staticIPs":["10.0.0.1"],"mac":"0a:00:00:00:00:01"}`)
	f.Add(`{"interface":"net1","ipv4":"p"}`)
	f.Add(`{"interface":"net1","staticIPs":["10.0.0.1","10.0.0.2"]}`)
	f.Add(`{"network":"ns/a"}`)
	f.Add(`["net1"]`)
	f.Add(`{"interface":"net1","network":"a/b/c"}`)
	f.Fuzz(func(t *testing.T, data string) {
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber() // as OPA hands numbers over
		var v any
		if err := dec.Decode(&v); err != nil {
			return
		}
		p, err := parsePartial(v)
		if err != nil {
			return
		}
		if err := nadv1.ValidateInterfaceName(p.Interface); err != nil {
			t.Fatalf("accepted %s with interface %q: %v", data, p.Interface, err)
		}
		if p.Network != nil {
			if err := validNetwork(*p.Network); err != nil {
				t.Fatalf("accepted network %q", *p.Network)
			}
		}
	})
}

// FuzzValidate: any source compiles or gives errors located inside it.
func FuzzValidate(f *testing.F) {
	f.Add("package p\n\ndeny contains \"x\" if input.a == 1\n")
	f.Add("package p\n\nattachments contains {\"interface\": \"net1\"}\n")
	f.Add("package p\n\ndeny contains x if {\n")
	f.Add("package berth.lib\n\ndeny contains 1\n")
	f.Add("package p\nimport data.berth.lib\ndefault_route := lib.requested_interfaces[0]\n")
	f.Fuzz(func(t *testing.T, src string) {
		lines := int32(strings.Count(src, "\n") + 1)
		for _, e := range Validate(src) {
			if e.Message == "" {
				t.Fatalf("an error without message: %+v", e)
			}
			if e.Line < 0 || e.Line > lines+1 || e.Column < 0 {
				t.Fatalf("error located outside the source (%d lines): %+v", lines, e)
			}
		}
	})
}

// FuzzShippedAnnotations feeds arbitrary annotation values to the whole
// shipped set: malformed input must be denied with a message, never make a
// shipped policy fail at run time (which would fail the admission with a
// server error instead of telling the user what is wrong).
func FuzzShippedAnnotations(f *testing.F) {
	sources, err := ShippedSources(nil)
	if err != nil {
		f.Fatal(err)
	}
	e := newEngine(f, Options{}, sources...)
	c := testCluster()
	f.Add("storage, mgmt", `{"interface":"net1","ipv4":["storage-v4"]}`, `[{"interface":"net2","ipv6":["storage-v6"]}]`, `{"net1":["10.6.0.9"]}`, "net2", `{"ipv4":["storage-*"]}`, `[{"ipv4pools":["tenant-a-v4"]}]`, "storage", `{"ipv4":["storage-v4"]}`)
	f.Add("storage", `{"ipv4":[1,{}]}`, `[1,"a",null]`, `{"net1":[null]}`, "", `{"IPv4":"a,b","ipv4":["c"]}`, `[{"interface":7,"ipv4":["[","*"]}]`, `[{"name":7}]`, `[{"network":1}]`)
	f.Add("", `null`, `{}`, `[]`, "eth0", `"x"`, `{"interface":"net1","cleangateway":"no","ipv4pool":"a, ,b"}`, "a/b/c@", `[[]]`)
	f.Add(`[{"name":"storage","ips":["10.6.0.9/16"],"default-route":["10.6.0.1"]}]`, `{"ipv6":["storage-v6"]}`, ``, `{"net1":["fd00:6::9","10.6.0.9"]}`, "net1", `{"ipv4":["{a,b}"]}`, `[{"ipv4":["x"],"defaultroute":true},{"ipv4":["y"],"defaultRoute":true}]`, `storage@net1, mgmt@net1`, `[{"network":"storage","ipv4":[]}]`)
	f.Fuzz(func(t *testing.T, networks, ippool, ippools, staticIPs, route, spIppool, spIppools, nsNetworks, nsPools string) {
		annotations := map[string]string{}
		set := func(m map[string]string, k, v string) {
			if v != "" {
				m[k] = v
			}
		}
		set(annotations, nadv1.NetworksAnnotation, networks)
		set(annotations, "berth.io/ippool", ippool)
		set(annotations, "berth.io/ippools", ippools)
		set(annotations, "berth.io/static-ips", staticIPs)
		set(annotations, "berth.io/default-route-nic", route)
		set(annotations, "ipam.spidernet.io/ippool", spIppool)
		set(annotations, "ipam.spidernet.io/ippools", spIppools)
		set(annotations, "ipam.spidernet.io/default-route-nic", route)
		pod := testPod("team-a", annotations)
		if _, err := RequestedNetworksOf(pod); err != nil {
			return // the webhook refuses it before the policies
		}
		ns := c.namespaces["team-a"]
		ns.Annotations = map[string]string{}
		set(ns.Annotations, "berth.io/default-networks", nsNetworks)
		set(ns.Annotations, "berth.io/default-ippools", nsPools)
		set(ns.Annotations, "ipam.spidernet.io/default-ipv4-ippool", nsPools)
		dec, err := e.Evaluate(t.Context(), c.input(t, pod))
		if err != nil {
			var ee *EvalError
			if errors.As(err, &ee) {
				t.Fatalf("shipped policy %s failed at run time: %v", ee.Policy, err)
			}
			t.Fatal(err)
		}
		for _, d := range dec.Denials {
			if d.Message == "" || d.Policy == "" {
				t.Fatalf("a denial without message or policy: %+v", d)
			}
		}
		seen := map[string]bool{}
		routes := 0
		for _, a := range dec.Attachments {
			if seen[a.Interface] {
				t.Fatalf("interface %s twice", a.Interface)
			}
			seen[a.Interface] = true
			if a.DefaultRoute {
				routes++
			}
		}
		if routes > 1 {
			var b bytes.Buffer
			_ = json.NewEncoder(&b).Encode(dec)
			t.Fatalf("%d default routes: %s", routes, b.String())
		}
	})
}
