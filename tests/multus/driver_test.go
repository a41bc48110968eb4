package multus

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

func nad(ns, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
}

// Interface names and the order of delegates follow Multus: the
// default-network annotation (else the cluster network) as eth0, then the
// networks annotation's elements as their interface or net<N>.
func TestAttachments(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := nadv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		nad("default", "storage", `{"cniVersion":"1.1.0","name":"storage","type":"macvlan"}`),
		nad("infra", "mgmt", `{"cniVersion":"1.1.0","name":"mgmt","type":"macvlan"}`),
		nad("default", "under", `{"cniVersion":"1.1.0","name":"under","type":"macvlan"}`),
	).Build()
	cluster := &Attachment{Network: "kube-system/cluster", Config: []byte(`{}`)}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        string
		err         string
	}{
		{"short form", map[string]string{nadv1.NetworksAnnotation: "storage, infra/mgmt@mgmt0, storage"},
			"eth0=kube-system/cluster net1=default/storage mgmt0=infra/mgmt net3=default/storage", ""},
		{"JSON with ips, mac and cni-args", map[string]string{nadv1.NetworksAnnotation: `[{"name":"storage","interface":"net1","ips":["10.6.1.5/16"],"mac":"0a:1b:00:00:00:01","cni-args":{"k":"v"}}]`},
			"eth0=kube-system/cluster net1=default/storage", ""},
		{"default network replaces the cluster's", map[string]string{nadv1.DefaultNetworkAnnotation: "under", nadv1.NetworksAnnotation: "storage"},
			"eth0=default/under net1=default/storage", ""},
		{"unknown network", map[string]string{nadv1.NetworksAnnotation: "nope"}, "", `network default/nope: `},
		{"bad annotation", map[string]string{nadv1.NetworksAnnotation: "[{"}, "", "annotation k8s.v1.cni.cncf.io/networks"},
		{"two default networks", map[string]string{nadv1.DefaultNetworkAnnotation: "under, storage"}, "", "must name one network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Driver{Client: c, ClusterNetwork: cluster}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Annotations: tc.annotations}}
			atts, err := d.Attachments(context.Background(), pod)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range atts {
				got = append(got, a.IfName+"="+a.Network)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %s, want %s", strings.Join(got, " "), tc.want)
			}
			if tc.name == "JSON with ips, mac and cni-args" {
				a := atts[1]
				if a.IPs[0] != "10.6.1.5/16" || a.MAC != "0a:1b:00:00:00:01" || a.CNIArgs["k"] != "v" {
					t.Errorf("element not carried over: %+v", a)
				}
			}
		})
	}
}

// args.cni lands in every plugin of a list, and in a single plugin; the
// capabilities go to runtimeConfig through libcni.
func TestConfList(t *testing.T) {
	for _, config := range []string{
		`{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"macvlan","args":{"cni":{"other":1}}},{"type":"berth-coordinator"}]}`,
		`{"cniVersion":"1.1.0","name":"n","type":"macvlan"}`,
	} {
		list, err := confList(Attachment{Network: "d/n", Config: []byte(config), CNIArgs: map[string]any{"berth.io/assignment": map[string]any{"interface": "net1"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Plugins {
			var m struct {
				Args struct {
					CNI map[string]any `json:"cni"`
				} `json:"args"`
			}
			if err := json.Unmarshal(p.Bytes, &m); err != nil {
				t.Fatal(err)
			}
			if m.Args.CNI["berth.io/assignment"] == nil {
				t.Errorf("plugin %s lacks args.cni: %s", p.Network.Type, p.Bytes)
			}
			if strings.Contains(config, `"other"`) && p.Network.Type == "macvlan" && m.Args.CNI["other"] == nil {
				t.Errorf("existing args.cni key lost: %s", p.Bytes)
			}
		}
	}
}

func FuzzConfList(f *testing.F) {
	f.Add(`{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"macvlan"},{"type":"berth-coordinator"}]}`)
	f.Add(`{"cniVersion":"0.3.1","name":"n","type":"macvlan","args":{"cni":[]}}`)
	f.Add(`{"plugins":[1]}`)
	f.Fuzz(func(t *testing.T, config string) {
		list, err := confList(Attachment{Network: "d/n", Config: []byte(config), CNIArgs: map[string]any{"k": "v"}})
		if err == nil && len(list.Plugins) == 0 {
			t.Fatalf("accepted %s with no plugin", config)
		}
	})
}
