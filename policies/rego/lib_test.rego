package berth.lib_test

import data.berth.lib

test_is_ip if {
	every s in ["10.6.212.150", "fd00::1", "::1", "0.0.0.0"] {
		lib.is_ip(s)
	}
	every s in ["10.6.212.150/16", "10.6.212", "300.1.1.1", "", "fd00::1/64", "x"] {
		not lib.is_ip(s)
	}
	not lib.is_ip(7)
}

test_ip_family if {
	lib.ip_family("10.0.0.1") == 4
	lib.ip_family("fd00::1") == 6
}

test_is_interface_name if {
	every s in ["eth0", "net1", "a", "vlan.100", "abcdefghijklmno"] {
		lib.is_interface_name(s)
	}
	every s in ["", "abcdefghijklmnop", "a/b", "a:b", "a b", ".", "..", "ü"] {
		not lib.is_interface_name(s)
	}
	not lib.is_interface_name(1)
}

test_json_value if {
	lib.json_value(`{"a":1}`) == {"a": 1}
	not lib.json_value(`{"a":`)
	not lib.json_value(3)
}

test_pool_errors if {
	inp := {"pools": {"p4": {"family": 4}, "p6": {"family": 6}}}
	lib.pool_errors("ipv4", 4, ["p4", "p6", "nope", 1]) == {
		`ipv4[1]: IPPool "p6" is an IPv6 pool`,
		`ipv4[2]: IPPool "nope" does not exist`,
		"ipv4[3]: 1 is not the name of an IPPool",
	} with input as inp
}

test_requested if {
	inp := {
		"networks": {"ns/a": {"berth": true}, "ns/b": {"berth": false}},
		"requestedNetworks": [{"network": "ns/a", "interface": "net1"}, {"network": "ns/b", "interface": "net2"}],
	}
	lib.requested_interfaces == ["net1", "net2"] with input as inp
	lib.berth_requested == ["net1"] with input as inp
	lib.interfaces_text == "net1, net2" with input as inp
	lib.interfaces_text == "it requests none" with input as {"requestedNetworks": []}
}
