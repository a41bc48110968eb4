package berth.shipped.namespace_defaults_test

import data.berth.shipped.namespace_defaults as nd

base := {
	"pod": {"metadata": {"name": "p", "namespace": "team-a"}},
	"networks": {
		"team-a/storage": {"namespace": "team-a", "name": "storage", "berth": true},
		"infra/mgmt": {"namespace": "infra", "name": "mgmt", "berth": true},
		"team-a/sriov-foreign": {"namespace": "team-a", "name": "sriov-foreign", "berth": false},
	},
	"pools": {
		"ns-v4": {"name": "ns-v4", "family": 4},
		"mgmt-v4": {"name": "mgmt-v4", "family": 4},
		"ns-v6": {"name": "ns-v6", "family": 6},
	},
	"requestedNetworks": [],
}

ns(annotations) := object.union(base, {"namespace": {"name": "team-a", "annotations": annotations}})

test_default_networks_forms if {
	cases := [
		["storage", {{"interface": "net1", "network": "team-a/storage"}}],
		["storage, infra/mgmt@mgmt0", {{"interface": "net1", "network": "team-a/storage"}, {"interface": "mgmt0", "network": "infra/mgmt"}}],
		[`[{"name":"storage"},{"name":"mgmt","namespace":"infra"}]`, {{"interface": "net1", "network": "team-a/storage"}, {"interface": "net2", "network": "infra/mgmt"}}],
		[`[{"name":"sriov-foreign","interface":"vf0"}]`, {{"interface": "vf0", "network": "team-a/sriov-foreign"}}],
	]
	bad := [{"value": c[0], "want": c[1], "got": got, "deny": d} |
		some c in cases
		inp := ns({"berth.io/default-networks": c[0]})
		got := nd.attachments with input as inp
		d := nd.deny with input as inp
		not ok(got, c[1], d)
	]
	print(bad)
	bad == []
}

ok(got, want, deny) if {
	got == want
	count(deny) == 0
}

test_default_networks_only_for_pods_requesting_none if {
	inp := object.union(ns({"berth.io/default-networks": "storage"}), {"requestedNetworks": [{"network": "infra/mgmt", "interface": "net1"}]})
	count(nd.attachments) == 0 with input as inp
}

test_default_ippools if {
	inp := ns({
		"berth.io/default-networks": "storage, infra/mgmt, sriov-foreign",
		"berth.io/default-ippools": `[{"ipv4":["ns-v4"],"ipv6":["ns-v6"]},{"network":"infra/mgmt","ipv4":["mgmt-v4"]}]`,
	})
	nd.attachments == {
		{"interface": "net1", "network": "team-a/storage"},
		{"interface": "net2", "network": "infra/mgmt"},
		{"interface": "net3", "network": "team-a/sriov-foreign"},
		{"interface": "net1", "network": "team-a/storage", "ipv4": ["ns-v4"], "ipv6": ["ns-v6"]},
		{"interface": "net2", "network": "infra/mgmt", "ipv4": ["mgmt-v4"], "ipv6": []},
	} with input as inp
	count(nd.deny) == 0 with input as inp
}

test_default_ippools_for_requested_networks if {
	inp := object.union(ns({"berth.io/default-ippools": `{"network":"mgmt","ipv4":["mgmt-v4"]}`}), {"requestedNetworks": [
		{"network": "team-a/storage", "interface": "net1"},
		{"network": "infra/mgmt", "interface": "net2"},
	]})
	nd.attachments == {{"interface": "net2", "network": "infra/mgmt", "ipv4": ["mgmt-v4"], "ipv6": []}} with input as inp
}

test_malformed if {
	cases := [
		[{"berth.io/default-networks": "[{"}, `namespace "team-a": annotation berth.io/default-networks: not valid JSON`],
		[{"berth.io/default-networks": `[{"name":"Bad_Name"}]`}, `namespace "team-a": annotation berth.io/default-networks: element 0: name Bad_Name is not a valid NetworkAttachmentDefinition name`],
		[{"berth.io/default-networks": "a/b/c"}, `namespace "team-a": annotation berth.io/default-networks: element 0: "a/b/c" is not [namespace/]name[@interface]`],
		[{"berth.io/default-networks": "storage@a@b"}, `namespace "team-a": annotation berth.io/default-networks: element 0: "storage@a@b" is not [namespace/]name[@interface]`],
		[{"berth.io/default-networks": "storage@eth:0"}, `namespace "team-a": annotation berth.io/default-networks: element 0: interface eth:0 is not a valid interface name`],
		[{"berth.io/default-networks": "storage@x, infra/mgmt@x"}, `namespace "team-a": annotation berth.io/default-networks: element 1: interface "x" is already element 0's`],
		[{"berth.io/default-networks": "storage", "berth.io/default-ippools": "nope"}, `namespace "team-a": annotation berth.io/default-ippools: not valid JSON`],
		[{"berth.io/default-networks": "storage", "berth.io/default-ippools": `"ns-v4"`}, `namespace "team-a": annotation berth.io/default-ippools: must be {"ipv4":[...],"ipv6":[...]} or a list of those`],
		[{"berth.io/default-networks": "storage", "berth.io/default-ippools": `{"ipv4":["ns-v6"]}`}, `namespace "team-a": annotation berth.io/default-ippools: ipv4[0]: IPPool "ns-v6" is an IPv6 pool`],
		[{"berth.io/default-networks": "storage", "berth.io/default-ippools": `[{"pools":["ns-v4"]}]`}, `namespace "team-a": annotation berth.io/default-ippools: [0]: unknown field "pools" (known: network, ipv4, ipv6)`],
		[{"berth.io/default-networks": "storage", "berth.io/default-ippools": `{}`}, `namespace "team-a": annotation berth.io/default-ippools: names no pool: give ipv4, ipv6 or both`],
	]
	bad := [{"annotations": c[0], "want": c[1], "deny": d} |
		some c in cases
		d := nd.deny with input as ns(c[0])
		not c[1] in d
	]
	print(bad)
	bad == []
}

test_malformed_namespace_annotation_spares_pods_it_does_not_apply_to if {
	inp := object.union(ns({"berth.io/default-networks": "a/b/c"}), {"requestedNetworks": [{"network": "team-a/storage", "interface": "net1"}]})
	count(nd.deny) == 0 with input as inp
}
