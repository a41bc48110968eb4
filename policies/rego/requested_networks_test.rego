package berth.shipped.requested_networks_test

import data.berth.shipped.requested_networks as rn

base := {
	"pod": {"metadata": {"name": "p", "namespace": "ns"}},
	"namespace": {"name": "ns"},
	"networks": {
		"ns/storage": {"namespace": "ns", "name": "storage", "berth": true},
		"ns/uplink": {"namespace": "ns", "name": "uplink", "berth": true},
		"ns/whereabouts": {"namespace": "ns", "name": "whereabouts", "berth": false},
	},
	"pools": {},
}

requests(list) := object.union(base, {"requestedNetworks": list})

test_grants_berth_networks_only if {
	inp := requests([
		{"network": "ns/storage", "interface": "net1"},
		{"network": "ns/whereabouts", "interface": "net2"},
		{"network": "ns/uplink", "interface": "eth0", "default": true},
		{"network": "ns/missing", "interface": "net4"},
	])
	rn.attachments == {
		{"interface": "net1", "network": "ns/storage"},
		{"interface": "eth0", "network": "ns/uplink"},
	} with input as inp
	count(rn.deny) == 0 with input as inp
	not rn.default_route with input as inp
}

test_mac_static_ips_and_default_route_of_the_element if {
	inp := requests([
		{"network": "ns/storage", "interface": "net1", "mac": "0a:1b:0a:06:d4:65", "ips": ["10.6.212.150/16", "fd00:6::10/64"]},
		{"network": "ns/uplink", "interface": "net2", "defaultRoute": true},
	])
	rn.attachments == {
		{"interface": "net1", "network": "ns/storage", "mac": "0a:1b:0a:06:d4:65", "staticIPs": ["10.6.212.150", "fd00:6::10"]},
		{"interface": "net2", "network": "ns/uplink"},
	} with input as inp
	rn.default_route == "net2" with input as inp
}

test_two_default_routes_denied if {
	inp := requests([
		{"network": "ns/storage", "interface": "net1", "defaultRoute": true},
		{"network": "ns/uplink", "interface": "net2", "defaultRoute": true},
	])
	rn.deny == {"k8s.v1.cni.cncf.io/networks: default-route is set on 2 networks (net1, net2); at most one may carry the default route"} with input as inp
	not rn.default_route with input as inp
}

test_no_request_no_attachment if {
	count(rn.attachments) == 0 with input as requests([])
}
