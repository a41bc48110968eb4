package v1

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNetworkSelection(t *testing.T) {
	tests := []struct {
		name, value string
		want        []NetworkSelectionElement
		wantErr     string
	}{
		{name: "empty", value: "  ", want: nil},
		{name: "short form", value: "storage, other/fast@net2 ,mgmt@eth9",
			want: []NetworkSelectionElement{
				{Name: "storage", Namespace: "ns1"},
				{Name: "fast", Namespace: "other", InterfaceRequest: "net2"},
				{Name: "mgmt", Namespace: "ns1", InterfaceRequest: "eth9"},
			}},
		{name: "json form", value: `[{"name":"storage","interface":"net1","ips":["10.0.0.5/24"],"mac":"0a:00:00:00:00:01","cni-args":{"k":"v"}},{"name":"b","namespace":"x","default-route":["10.0.0.1"]}]`,
			want: []NetworkSelectionElement{
				{Name: "storage", Namespace: "ns1", InterfaceRequest: "net1", IPRequest: []string{"10.0.0.5/24"}, MacRequest: "0a:00:00:00:00:01", CNIArgs: map[string]any{"k": "v"}},
				{Name: "b", Namespace: "x", GatewayRequest: []string{"10.0.0.1"}},
			}},
		{name: "trailing comma", value: "a,", wantErr: "element 1"},
		{name: "empty interface", value: "a@", wantErr: "empty interface"},
		{name: "two slashes", value: "a/b/c", wantErr: "name \"b/c\""},
		{name: "uppercase name", value: "Storage", wantErr: "name \"Storage\""},
		{name: "bad namespace", value: "ns_1/a", wantErr: "namespace \"ns_1\""},
		{name: "long interface", value: "a@abcdefghijklmnop", wantErr: "1 to 15 characters"},
		{name: "bad json", value: `[{"name":1}]`, wantErr: "not a JSON list"},
		{name: "unknown json field", value: `[{"name":"a","ipz":[]}]`, wantErr: "unknown field"},
		{name: "json trailing data", value: `[{"name":"a"}] x`, wantErr: "after the JSON list"},
		{name: "bad ip request", value: `[{"name":"a","ips":["10.0.0.300/24"]}]`, wantErr: "ips of network ns1/a"},
		{name: "bad default-route", value: `[{"name":"a","default-route":["x"]}]`, wantErr: "default-route of network ns1/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworkSelection(tt.value, "ns1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), NetworksAnnotation) {
					t.Errorf("error %q does not name the annotation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseNetworkSelection(f *testing.F) {
	for _, s := range []string{"a", "ns/a@net1, b", `[{"name":"a","ips":["10.0.0.1/24"]}]`, "a@", "[", "/@,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		elems, err := ParseNetworkSelection(value, "ns")
		if err != nil {
			return
		}
		for _, e := range elems {
			// Whatever parses must be valid and carry a namespace.
			if e.Namespace == "" || e.Validate() != nil {
				t.Fatalf("parsed %q into invalid element %+v", value, e)
			}
		}
	})
}
