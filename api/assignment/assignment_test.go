package assignment

import (
	"strings"
	"testing"
)

const valid = `{"interfaces":[{"interface":"net1","network":"default/storage","addresses":[` +
	`{"address":"10.6.212.101/16","gateway":"10.6.0.1","pool":"storage-v4","allocation":"storage-v4.10.6.212.101"},` +
	`{"address":"fd00:6::101/64","gateway":"fd00:6::1","pool":"storage-v6","allocation":"storage-v6.fd00-6--101"}],` +
	`"routes":[{"dst":"10.7.0.0/16"},{"dst":"fd00:7::/64","gw":"fd00:6::fe"}],"dns":{"nameservers":["10.6.0.53"]},` +
	`"mac":"0a:1b:0a:06:d4:65","defaultRoute":true}]}`

func TestParseRoundTrip(t *testing.T) {
	a, err := Parse(valid)
	if err != nil {
		t.Fatal(err)
	}
	itf, ok := a.Lookup("net1")
	if !ok || len(itf.Addresses) != 2 || itf.Addresses[1].Allocation != "storage-v6.fd00-6--101" || !itf.DefaultRoute {
		t.Fatalf("parsed %+v", a)
	}
	if _, ok := a.Lookup("net2"); ok {
		t.Error("Lookup found net2, which is not assigned")
	}
	out, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if out != valid {
		t.Errorf("round trip changed the annotation:\n got %s\nwant %s", out, valid)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"not json", `{`, "not valid JSON"},
		{"unknown field", `{"interfaces":[],"x":1}`, "unknown field"},
		{"trailing data", `{"interfaces":[]} {}`, "after the JSON value"},
		{"bad interface name", `{"interfaces":[{"interface":"a/b","network":"n/x"}]}`, "interfaces[0].interface"},
		{"no network", `{"interfaces":[{"interface":"net1"}]}`, "interfaces[0].network"},
		{"address without prefix", `{"interfaces":[{"interface":"net1","network":"n/x","addresses":[{"address":"10.0.0.1","pool":"p"}]}]}`, "interfaces[0].addresses[0].address"},
		{"two of one family", `{"interfaces":[{"interface":"net1","network":"n/x","addresses":[{"address":"10.0.0.1/24","pool":"p"},{"address":"10.0.0.2/24","pool":"p"}]}]}`, "addresses[1].address: a second address"},
		{"gateway of other family", `{"interfaces":[{"interface":"net1","network":"n/x","addresses":[{"address":"10.0.0.1/24","gateway":"fd00::1","pool":"p"}]}]}`, "addresses[0].gateway"},
		{"no pool", `{"interfaces":[{"interface":"net1","network":"n/x","addresses":[{"address":"10.0.0.1/24"}]}]}`, "addresses[0].pool"},
		{"bad route", `{"interfaces":[{"interface":"net1","network":"n/x","routes":[{"dst":"x"}]}]}`, "routes[0].dst"},
		{"route gw family", `{"interfaces":[{"interface":"net1","network":"n/x","routes":[{"dst":"10.0.0.0/8","gw":"fd00::1"}]}]}`, "routes[0].gw"},
		{"bad dns", `{"interfaces":[{"interface":"net1","network":"n/x","dns":{"nameservers":["x"]}}]}`, "dns.nameservers[0]"},
		{"bad mac", `{"interfaces":[{"interface":"net1","network":"n/x","mac":"zz"}]}`, "interfaces[0].mac"},
		{"duplicate interface", `{"interfaces":[{"interface":"net1","network":"n/x"},{"interface":"net1","network":"n/y"}]}`, "interfaces[1].interface: \"net1\" appears twice"},
		{"two default routes", `{"interfaces":[{"interface":"net1","network":"n/x","defaultRoute":true},{"interface":"net2","network":"n/y","defaultRoute":true}]}`, "2 interfaces carry the default route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), Annotation) {
				t.Errorf("Parse error = %v, want it to name %s and contain %q", err, Annotation, tt.want)
			}
		})
	}
}

func TestParseInterface(t *testing.T) {
	i, err := ParseInterface([]byte(`{"interface":"net1","network":"default/storage","addresses":[{"address":"10.0.0.5/24","pool":"p"}]}`))
	if err != nil || i.Addresses[0].Address != "10.0.0.5/24" {
		t.Fatalf("ParseInterface = %+v, %v", i, err)
	}
	if _, err := ParseInterface([]byte(`{"interface":"","network":"x"}`)); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("empty interface name accepted: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(valid)
	f.Add(`{"interfaces":[]}`)
	f.Add(`{"interfaces":[{"interface":"net1","network":"n/x","addresses":[{"address":"::1/128","pool":"p"}]}]}`)
	f.Fuzz(func(t *testing.T, value string) {
		a, err := Parse(value)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip unchanged in meaning.
		out, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", out, err)
		}
		again, _ := b.Marshal()
		if again != out {
			t.Fatalf("round trip not stable: %q then %q", out, again)
		}
	})
}
