package berth.shipped.annotations_test

import data.berth.shipped.annotations

# A pod asking for two Berth networks, with the pools of a small cluster.
base := {
	"pod": {"metadata": {"name": "web-0", "namespace": "team-a", "annotations": {}}},
	"namespace": {"name": "team-a"},
	"networks": {
		"team-a/storage": {"namespace": "team-a", "name": "storage", "berth": true},
		"team-a/mgmt": {"namespace": "team-a", "name": "mgmt", "berth": true},
		"team-a/foreign": {"namespace": "team-a", "name": "foreign", "berth": false},
	},
	"pools": {
		"v4-a": {"name": "v4-a", "family": 4},
		"v4-b": {"name": "v4-b", "family": 4},
		"v6-a": {"name": "v6-a", "family": 6},
	},
	"requestedNetworks": [
		{"network": "team-a/storage", "interface": "net1"},
		{"network": "team-a/mgmt", "interface": "net2"},
		{"network": "team-a/foreign", "interface": "net3"},
	],
}

with_annotations(annotations) := object.union(base, {"pod": {"metadata": {"annotations": annotations}}})

test_no_annotation_decides_nothing if {
	count(annotations.attachments) == 0 with input as base
	count(annotations.deny) == 0 with input as base
	not annotations.default_route with input as base
}

test_ippool_with_interface if {
	inp := with_annotations({"berth.io/ippool": `{"interface":"net2","ipv4":["v4-a","v4-b"],"ipv6":["v6-a"]}`})
	annotations.attachments == {{"interface": "net2", "network": "team-a/mgmt", "ipv4": ["v4-a", "v4-b"], "ipv6": ["v6-a"]}} with input as inp
	count(annotations.deny) == 0 with input as inp
}

test_ippool_without_interface_covers_every_berth_network if {
	inp := with_annotations({"berth.io/ippool": `{"ipv4":["v4-a"]}`})
	annotations.attachments == {
		{"interface": "net1", "network": "team-a/storage", "ipv4": ["v4-a"], "ipv6": []},
		{"interface": "net2", "network": "team-a/mgmt", "ipv4": ["v4-a"], "ipv6": []},
	} with input as inp
}

test_ippools_and_ippool_without_interface if {
	inp := with_annotations({
		"berth.io/ippools": `[{"interface":"net1","ipv6":["v6-a"]}]`,
		"berth.io/ippool": `{"ipv4":["v4-b"]}`,
	})
	annotations.attachments == {
		{"interface": "net1", "network": "team-a/storage", "ipv4": [], "ipv6": ["v6-a"]},
		{"interface": "net2", "network": "team-a/mgmt", "ipv4": ["v4-b"], "ipv6": []},
	} with input as inp
	count(annotations.deny) == 0 with input as inp
}

test_explicit_interface_on_a_foreign_network_is_honoured if {
	inp := with_annotations({"berth.io/ippools": `[{"interface":"net3","ipv4":["v4-a"]}]`})
	annotations.attachments == {{"interface": "net3", "network": "team-a/foreign", "ipv4": ["v4-a"], "ipv6": []}} with input as inp
}

# Each malformed annotation is denied with the annotation and what is wrong,
# and decides nothing.
test_malformed_annotations if {
	cases := [
		[{"berth.io/ippool": `{"ipv4":`}, "berth.io/ippool: not valid JSON"],
		[{"berth.io/ippool": `["v4-a"]`}, `berth.io/ippool: must be a JSON object such as {"interface":"net1","ipv4":["pool"]}`],
		[{"berth.io/ippool": `{"interface":"net1"}`}, "berth.io/ippool: names no pool: give ipv4, ipv6 or both"],
		[{"berth.io/ippool": `{"ipv4":["v4-a"],"pools":["x"]}`}, `berth.io/ippool: unknown field "pools" (known: interface, ipv4, ipv6)`],
		[{"berth.io/ippool": `{"ipv4":"v4-a"}`}, "berth.io/ippool: ipv4: must be a list of IPPool names"],
		[{"berth.io/ippool": `{"ipv4":["nope"]}`}, `berth.io/ippool: ipv4[0]: IPPool "nope" does not exist`],
		[{"berth.io/ippool": `{"ipv4":["v6-a"]}`}, `berth.io/ippool: ipv4[0]: IPPool "v6-a" is an IPv6 pool`],
		[{"berth.io/ippool": `{"ipv6":[7]}`}, "berth.io/ippool: ipv6[0]: 7 is not the name of an IPPool"],
		[{"berth.io/ippool": `{"interface":"net9","ipv4":["v4-a"]}`}, `berth.io/ippool: interface: "net9" is not one of the pod's networks (net1, net2, net3)`],
		[{"berth.io/ippool": `{"interface":"a/b","ipv4":["v4-a"]}`}, `berth.io/ippool: interface: a/b is not a valid interface name`],
		[{"berth.io/ippools": `{"interface":"net1"}`}, `berth.io/ippools: must be a JSON list of {"interface":...,"ipv4":[...],"ipv6":[...]}`],
		[{"berth.io/ippools": `[]`}, "berth.io/ippools: must list at least one interface"],
		[{"berth.io/ippools": `[{"ipv4":["v4-a"]}]`}, "berth.io/ippools: [0]: interface is required"],
		[{"berth.io/ippools": `[{"interface":"net1","ipv4":["v4-a"]},{"interface":"net1","ipv4":["v4-b"]}]`}, `berth.io/ippools: [1].interface: "net1" is already named by entry 0`],
		[{"berth.io/static-ips": `["10.0.0.1"]`}, `berth.io/static-ips: must be a JSON object of interface to addresses, such as {"net1":["10.6.212.150"]}`],
		[{"berth.io/static-ips": `{"net1":"10.0.0.1"}`}, "berth.io/static-ips: net1: must be a list of one address per IP family"],
		[{"berth.io/static-ips": `{"net1":[]}`}, "berth.io/static-ips: net1: must be a list of one address per IP family"],
		[{"berth.io/static-ips": `{"net1":["10.0.0.300"]}`}, `berth.io/static-ips: net1[0]: "10.0.0.300" is not an IP address`],
		[{"berth.io/static-ips": `{"net1":["10.0.0.1/24"]}`}, `berth.io/static-ips: net1[0]: "10.0.0.1/24" is not an IP address`],
		[{"berth.io/static-ips": `{"net1":["10.0.0.1","10.0.0.2"]}`}, "berth.io/static-ips: net1[1]: 10.0.0.2 is a second IPv4 address; give at most one per family"],
		[{"berth.io/static-ips": `{"net7":["10.0.0.1"]}`}, `berth.io/static-ips: net7: "net7" is not one of the pod's networks (net1, net2, net3)`],
		[{"berth.io/default-route-nic": "net7"}, `berth.io/default-route-nic: "net7" is not one of the pod's networks (net1, net2, net3) nor eth0`],
		[{"berth.io/default-route-nic": "bad name"}, `berth.io/default-route-nic: "bad name" is not a valid interface name`],
	]
	bad := [{"annotations": c[0], "want": c[1], "deny": d, "attachments": a} |
		some c in cases
		inp := with_annotations(c[0])
		d := annotations.deny with input as inp
		a := annotations.attachments with input as inp
		not denied_only(c[1], d, a, inp)
	]
	print(bad)
	bad == []
}

denied_only(want, deny, attachments, inp) if {
	want in deny
	count(attachments) == 0
	not annotations.default_route with input as inp
}

test_static_ips if {
	inp := with_annotations({"berth.io/static-ips": `{"net1":["10.6.212.150","fd00::10"]}`})
	annotations.attachments == {{"interface": "net1", "network": "team-a/storage", "staticIPs": ["10.6.212.150", "fd00::10"]}} with input as inp
	count(annotations.deny) == 0 with input as inp
}

test_default_route_nic if {
	annotations.default_route == "net2" with input as with_annotations({"berth.io/default-route-nic": "net2"})
	annotations.default_route == "eth0" with input as with_annotations({"berth.io/default-route-nic": "eth0"})
}

test_pod_without_networks if {
	inp := object.union(with_annotations({"berth.io/ippools": `[{"interface":"net1","ipv4":["v4-a"]}]`}), {"requestedNetworks": []})
	`berth.io/ippools: [0].interface: "net1" is not one of the pod's networks (it requests none)` in annotations.deny with input as inp
}

# The valid annotation still decides; the pod is denied for the other.
test_ippool_naming_an_interface_of_ippools if {
	inp := with_annotations({
		"berth.io/ippools": `[{"interface":"net1","ipv4":["v4-a"]}]`,
		"berth.io/ippool": `{"interface":"net1","ipv4":["v4-b"]}`,
	})
	annotations.deny == {`berth.io/ippool: interface "net1" is also named by berth.io/ippools`} with input as inp
	annotations.attachments == {{"interface": "net1", "network": "team-a/storage", "ipv4": ["v4-a"], "ipv6": []}} with input as inp
}
