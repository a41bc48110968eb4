package v1

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
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
		// Multus ignores keys it does not know; Berth keeps them, as written.
		{name: "unknown json keys are kept", value: `[{"name":"a","ipz":[ 1 ],"future":{"x":"y"},"Name":"b"}]`,
			want: []NetworkSelectionElement{{Name: "a", Namespace: "ns1", Unknown: map[string]json.RawMessage{
				"ipz": json.RawMessage(`[ 1 ]`), "future": json.RawMessage(`{"x":"y"}`), "Name": json.RawMessage(`"b"`),
			}}}},
		{name: "a known key of the wrong type", value: `[{"name":"a","ips":"10.0.0.5/24"}]`, wantErr: "cannot unmarshal string"},
		{name: "an element that is not an object", value: `[1]`, wantErr: "not a JSON list"},
		{name: "null element", value: `[null]`, wantErr: "name \"\""},
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

// TestSelectionElementJSON: an element written back keeps its unknown keys
// after the known ones, sorted, and its known keys in field order.
func TestSelectionElementJSON(t *testing.T) {
	elems, err := ParseNetworkSelection(`[{"zeta":1,"name":"a","interface":"net1","alpha":{"b": [true]},"cni-args":{"k":"v"}}]`, "ns1")
	if err != nil {
		t.Fatal(err)
	}
	elems[0].InterfaceRequest = "net2"
	got, err := json.Marshal(elems)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"a","namespace":"ns1","interface":"net2","cni-args":{"k":"v"},"alpha":{"b":[true]},"zeta":1}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A hand-filled Unknown cannot override a field.
	e := NetworkSelectionElement{Name: "a", Unknown: map[string]json.RawMessage{"name": json.RawMessage(`"b"`)}}
	if got, _ := json.Marshal(e); string(got) != `{"name":"a"}` {
		t.Errorf("got %s", got)
	}
}

func FuzzParseNetworkSelection(f *testing.F) {
	for _, s := range []string{"a", "ns/a@net1, b", `[{"name":"a","ips":["10.0.0.1/24"]}]`, "a@", "[", "/@,", `[{"name":"a","x-future":{"k":[1,"v"]},"bandwidth":{"rate":1}}]`} {
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
		if len(elems) == 0 {
			return
		}
		// Writing the elements back and reading them again gives the same
		// elements, unknown keys included: enrichment loses nothing.
		data, err := json.Marshal(elems)
		if err != nil {
			t.Fatalf("encoding %+v parsed from %q: %v", elems, value, err)
		}
		again, err := ParseNetworkSelection(string(data), "other")
		if err != nil {
			t.Fatalf("%s (from %q) does not parse again: %v", data, value, err)
		}
		// Equal encodings: empty lists and maps are left out, as omitted.
		if data2, err := json.Marshal(again); err != nil || string(data2) != string(data) {
			t.Fatalf("round trip of %q:\n got %s (%v)\nwant %s", value, data2, err, data)
		}
		for i := range elems {
			if got, want := slices.Sorted(maps.Keys(again[i].Unknown)), slices.Sorted(maps.Keys(elems[i].Unknown)); !slices.Equal(got, want) {
				t.Fatalf("round trip of %q: element %d has unknown keys %q, want %q", value, i, got, want)
			}
		}
	})
}
