package berth.shipped.spiderpool_test

import data.berth.shipped.spiderpool

base := {
	"pod": {"metadata": {"name": "app-1", "namespace": "team-a", "annotations": {}}},
	"namespace": {"name": "team-a", "annotations": {}},
	"networks": {
		"kube-system/macvlan-100": {"namespace": "kube-system", "name": "macvlan-100", "berth": true},
		"kube-system/macvlan-200": {"namespace": "kube-system", "name": "macvlan-200", "berth": true},
		"kube-system/other": {"namespace": "kube-system", "name": "other", "berth": false},
	},
	"pools": {
		"v4-pool1": {"name": "v4-pool1", "family": 4},
		"v4-pool2": {"name": "v4-pool2", "family": 4},
		"backup-ipv4-a": {"name": "backup-ipv4-a", "family": 4},
		"backup-ipv4-b": {"name": "backup-ipv4-b", "family": 4},
		"backup-ipv6-a": {"name": "backup-ipv6-a", "family": 6},
		"v6-pool1": {"name": "v6-pool1", "family": 6},
		"v6-pool2": {"name": "v6-pool2", "family": 6},
	},
	"requestedNetworks": [
		{"network": "kube-system/macvlan-100", "interface": "net1"},
		{"network": "kube-system/other", "interface": "net2"},
		{"network": "kube-system/macvlan-200", "interface": "net3"},
	],
}

pod(annotations) := object.union(base, {"pod": {"metadata": {"annotations": annotations}}})

att(iface, network, v4, v6) := {"interface": iface, "network": network, "ipv4": v4, "ipv6": v6}

# Every form of ipam.spidernet.io/ippool Spiderpool releases accepted, and
# what each decides for a pod with two Berth networks (net1, net3).
test_ippool_forms if {
	cases := [
		# current: ipv4/ipv6, no interface: every Berth network
		[`{"ipv4":["v4-pool1"],"ipv6":["v6-pool1","v6-pool2"]}`, {
			att("net1", "kube-system/macvlan-100", ["v4-pool1"], ["v6-pool1", "v6-pool2"]),
			att("net3", "kube-system/macvlan-200", ["v4-pool1"], ["v6-pool1", "v6-pool2"]),
		}],
		# only one family
		[`{"ipv4":["v4-pool1"]}`, {
			att("net1", "kube-system/macvlan-100", ["v4-pool1"], []),
			att("net3", "kube-system/macvlan-200", ["v4-pool1"], []),
		}],
		# older: interface + ipv4pools/ipv6pools
		[`{"interface":"net3","ipv4pools":["v4-pool2"],"ipv6pools":["v6-pool1"]}`, {att("net3", "kube-system/macvlan-200", ["v4-pool2"], ["v6-pool1"])}],
		# oldest: comma-separated strings
		[`{"interface":"net1","ipv4pool":"v4-pool1","ipv6pool":"v6-pool1, v6-pool2"}`, {att("net1", "kube-system/macvlan-100", ["v4-pool1"], ["v6-pool1", "v6-pool2"])}],
		# keys match case-insensitively, as Go's encoding/json matched them
		[`{"Interface":"net1","IPv4":["v4-pool1"]}`, {att("net1", "kube-system/macvlan-100", ["v4-pool1"], [])}],
		# unknown keys are ignored, as Spiderpool ignored them
		[`{"interface":"net1","ipv4":["v4-pool1"],"future":1}`, {att("net1", "kube-system/macvlan-100", ["v4-pool1"], [])}],
		# the newest key wins when several are present
		[`{"interface":"net1","ipv4":["v4-pool1"],"ipv4pools":["v4-pool2"]}`, {att("net1", "kube-system/macvlan-100", ["v4-pool1"], [])}],
		# wildcards, expanded per family in name order
		[`{"interface":"net1","ipv4":["v4-pool1","backup-ipv4*"],"ipv6":["backup-ipv[0-9]-?"]}`, {att("net1", "kube-system/macvlan-100", ["v4-pool1", "backup-ipv4-a", "backup-ipv4-b"], ["backup-ipv6-a"])}],
		[`{"interface":"net1","ipv4":["backup-ipv4-[^a]"]}`, {att("net1", "kube-system/macvlan-100", ["backup-ipv4-b"], [])}],
	]
	bad := [{"annotation": c[0], "want": c[1], "got": got, "deny": d} |
		some c in cases
		inp := pod({"ipam.spidernet.io/ippool": c[0]})
		got := spiderpool.attachments with input as inp
		d := spiderpool.deny with input as inp
		not ok(got, c[1], d)
	]
	print(bad)
	bad == []
}

ok(got, want, deny) if {
	got == want
	count(deny) == 0
}

test_ippools_forms if {
	cases := [
		# current, with cleangateway
		[`[{"interface":"net1","ipv4":["v4-pool1"],"ipv6":["v6-pool1"],"cleangateway":true},{"interface":"net3","ipv4":["v4-pool2"],"cleangateway":false}]`, {
			att("net1", "kube-system/macvlan-100", ["v4-pool1"], ["v6-pool1"]),
			att("net3", "kube-system/macvlan-200", ["v4-pool2"], []),
		}],
		# older: ipv4pools/ipv6pools with defaultRoute
		[`[{"interface":"net1","ipv4pools":["v4-pool1"],"defaultRoute":false},{"interface":"net3","ipv6pools":["v6-pool2"],"defaultRoute":true}]`, {
			att("net1", "kube-system/macvlan-100", ["v4-pool1"], []),
			att("net3", "kube-system/macvlan-200", [], ["v6-pool2"]),
		}],
		# the camel-cased cleanGateway of one release
		[`[{"interface":"net1","ipv4":["v4-pool1"],"cleanGateway":true}]`, {att("net1", "kube-system/macvlan-100", ["v4-pool1"], [])}],
		# without interface names: the pod's Berth networks in order
		[`[{"ipv4":["v4-pool1"]},{"ipv4":["v4-pool2"]}]`, {
			att("net1", "kube-system/macvlan-100", ["v4-pool1"], []),
			att("net3", "kube-system/macvlan-200", ["v4-pool2"], []),
		}],
		# an interface on a network Berth does not serve, named explicitly
		[`[{"interface":"net2","ipv4":["v4-pool1"]}]`, {att("net2", "kube-system/other", ["v4-pool1"], [])}],
	]
	bad := [{"annotation": c[0], "want": c[1], "got": got, "deny": d} |
		some c in cases
		inp := pod({"ipam.spidernet.io/ippools": c[0]})
		got := spiderpool.attachments with input as inp
		d := spiderpool.deny with input as inp
		not ok(got, c[1], d)
	]
	print(bad)
	bad == []
}

test_ippools_has_precedence_over_ippool if {
	inp := pod({
		"ipam.spidernet.io/ippools": `[{"interface":"net3","ipv4":["v4-pool2"]}]`,
		"ipam.spidernet.io/ippool": `this is not even JSON`,
	})
	spiderpool.attachments == {att("net3", "kube-system/macvlan-200", ["v4-pool2"], [])} with input as inp
	count(spiderpool.deny) == 0 with input as inp
}

test_default_route if {
	spiderpool.default_route == "net3" with input as pod({"ipam.spidernet.io/default-route-nic": "net3"})
	spiderpool.default_route == "eth0" with input as pod({"ipam.spidernet.io/default-route-nic": "eth0"})
	spiderpool.default_route == "net3" with input as pod({"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"]},{"interface":"net3","ipv4":["v4-pool2"],"defaultRoute":true}]`})

	# default-route-nic wins over defaultRoute
	spiderpool.default_route == "net1" with input as pod({
		"ipam.spidernet.io/default-route-nic": "net1",
		"ipam.spidernet.io/ippools": `[{"interface":"net3","ipv4":["v4-pool2"],"defaultRoute":true}]`,
	})
}

test_namespace_defaults if {
	inp := object.union(base, {"namespace": {"annotations": {
		"ipam.spidernet.io/default-ipv4-ippool": `["v4-pool2"]`,
		"ipam.spidernet.io/defaultv6ippool": `["backup-ipv6*"]`,
	}}})
	spiderpool.attachments == {
		att("net1", "kube-system/macvlan-100", ["v4-pool2"], ["backup-ipv6-a"]),
		att("net3", "kube-system/macvlan-200", ["v4-pool2"], ["backup-ipv6-a"]),
	} with input as inp
	count(spiderpool.deny) == 0 with input as inp

	# the pod's own annotation wins
	annotated := object.union(inp, {"pod": {"metadata": {"annotations": {"ipam.spidernet.io/ippool": `{"ipv4":["v4-pool1"]}`}}}})
	spiderpool.attachments == {
		att("net1", "kube-system/macvlan-100", ["v4-pool1"], []),
		att("net3", "kube-system/macvlan-200", ["v4-pool1"], []),
	} with input as annotated
}

test_newer_namespace_key_wins if {
	inp := object.union(base, {"namespace": {"annotations": {
		"ipam.spidernet.io/default-ipv4-ippool": `["v4-pool2"]`,
		"ipam.spidernet.io/defaultv4ippool": `["v4-pool1"]`,
	}}})
	spiderpool.attachments == {
		att("net1", "kube-system/macvlan-100", ["v4-pool2"], []),
		att("net3", "kube-system/macvlan-200", ["v4-pool2"], []),
	} with input as inp
}

test_malformed if {
	cases := [
		[{"ipam.spidernet.io/ippool": `{`}, "ipam.spidernet.io/ippool: not valid JSON"],
		[{"ipam.spidernet.io/ippool": `[]`}, "ipam.spidernet.io/ippool: must be a JSON object"],
		[{"ipam.spidernet.io/ippool": `{"interface":"net1"}`}, "ipam.spidernet.io/ippool: names no pool: give ipv4, ipv6 or both"],
		[{"ipam.spidernet.io/ippool": `{"ipv4":"v4-pool1","IPV4":["v4-pool2"]}`}, "ipam.spidernet.io/ippool: keys IPV4 and ipv4 differ only in case"],
		[{"ipam.spidernet.io/ippool": `{"ipv4":[1]}`}, "ipam.spidernet.io/ippool: ipv4[0]: 1 is not the name of an IPPool"],
		[{"ipam.spidernet.io/ippool": `{"ipv4":{"a":1}}`}, "ipam.spidernet.io/ippool: ipv4: must be a list of IPPool names"],
		[{"ipam.spidernet.io/ippool": `{"ipv4":["missing"]}`}, `ipam.spidernet.io/ippool: ipv4[0]: IPPool "missing" does not exist`],
		[{"ipam.spidernet.io/ippool": `{"ipv6":["v4-pool1"]}`}, `ipam.spidernet.io/ippool: ipv6[0]: IPPool "v4-pool1" is an IPv4 pool`],
		[{"ipam.spidernet.io/ippool": `{"ipv4":["nothing-*"]}`}, `ipam.spidernet.io/ippool: ipv4[0]: "nothing-*" matches no IPv4 IPPool`],
		[{"ipam.spidernet.io/ippool": `{"ipv4":["v4-[pool"]}`}, `ipam.spidernet.io/ippool: ipv4[0]: "v4-[pool" is not a valid pool name pattern (use *, ? and [a-z])`],
		[{"ipam.spidernet.io/ippool": `{"ipv4":["{v4-pool1,x}*"]}`}, `ipam.spidernet.io/ippool: ipv4[0]: "{v4-pool1,x}*" is not a valid pool name pattern (use *, ? and [a-z])`],
		[{"ipam.spidernet.io/ippool": `{"interface":"net9","ipv4":["v4-pool1"]}`}, `ipam.spidernet.io/ippool: interface: "net9" is not one of the pod's networks (net1, net2, net3)`],
		[{"ipam.spidernet.io/ippool": `{"interface":7,"ipv4":["v4-pool1"]}`}, "ipam.spidernet.io/ippool: interface: 7 is not a valid interface name"],
		[{"ipam.spidernet.io/ippools": `{}`}, "ipam.spidernet.io/ippools: must be a JSON list of pool selections"],
		[{"ipam.spidernet.io/ippools": `[]`}, "ipam.spidernet.io/ippools: must list at least one item"],
		[{"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"]},{"ipv4":["v4-pool2"]}]`}, "ipam.spidernet.io/ippools: interface must be given in every item or in none"],
		[{"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"]},{"interface":"net1","ipv4":["v4-pool2"]}]`}, `ipam.spidernet.io/ippools: [1].interface: "net1" is already named by item 0`],
		[{"ipam.spidernet.io/ippools": `[{"interface":"eth0","ipv4":["v4-pool1"]}]`}, `ipam.spidernet.io/ippools: [0].interface: "eth0" is not one of the pod's networks (net1, net2, net3)`],
		[{"ipam.spidernet.io/ippools": `[{"ipv4":["v4-pool1"]},{"ipv4":["v4-pool1"]},{"ipv4":["v4-pool1"]}]`}, "ipam.spidernet.io/ippools: 3 items without interface, but the pod has 2 Berth networks (net1, net3)"],
		[{"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"],"cleangateway":"yes"}]`}, `ipam.spidernet.io/ippools: [0].cleangateway: yes is not true or false`],
		[{"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"],"defaultRoute":true},{"interface":"net3","ipv4":["v4-pool1"],"defaultRoute":true}]`}, "ipam.spidernet.io/ippools: defaultRoute is true for net1, net3; at most one interface may carry the default route"],
		[{"ipam.spidernet.io/ippools": `[{"interface":"net1","ipv4":["v4-pool1"],"cleangateway":true}]`, "ipam.spidernet.io/default-route-nic": "net1"}, "ipam.spidernet.io/ippools: interface net1 has cleangateway true and cannot carry the default route"],
		[{"ipam.spidernet.io/default-route-nic": "net7"}, `ipam.spidernet.io/default-route-nic: "net7" is not one of the pod's networks (net1, net2, net3) nor eth0`],
		[{"ipam.spidernet.io/default-route-nic": "bad name"}, `ipam.spidernet.io/default-route-nic: "bad name" is not a valid interface name`],
	]
	bad := [{"annotations": c[0], "want": c[1], "deny": d} |
		some c in cases
		d := spiderpool.deny with input as pod(c[0])
		not c[1] in d
	]
	print(bad)
	bad == []
}

test_malformed_decides_nothing if {
	inp := pod({"ipam.spidernet.io/ippool": `{"ipv4":["missing"]}`})
	count(spiderpool.attachments) == 0 with input as inp
}

test_malformed_namespace_annotation if {
	inp := object.union(base, {"namespace": {"annotations": {"ipam.spidernet.io/default-ipv4-ippool": `"v4-pool1"`}}})
	spiderpool.deny == {`namespace "team-a": annotation ipam.spidernet.io/default-ipv4-ippool: must be a JSON list of IPPool names`} with input as inp
	count(spiderpool.attachments) == 0 with input as inp
}
