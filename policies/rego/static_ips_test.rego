package berth.shipped.static_ips_test

import data.berth.shipped.static_ips

pod(labels, annotations, requested) := {
	"pod": {"metadata": {"name": "p", "namespace": "ns", "annotations": annotations}},
	"namespace": {"name": "ns", "labels": labels},
	"networks": {"ns/a": {"namespace": "ns", "name": "a", "berth": true}, "ns/other": {"namespace": "ns", "name": "other", "berth": false}},
	"pools": {},
	"requestedNetworks": requested,
}

hint := `static addresses are not allowed in namespace "ns" (an administrator allows them with the namespace label berth.io/static-ips=true)`

test_denied_without_the_label if {
	cases := [
		[{}, {"berth.io/static-ips": `{"net1":["10.0.0.5"]}`}, [{"network": "ns/a", "interface": "net1"}], {sprintf("berth.io/static-ips: %s", [hint])}],
		[{}, {}, [{"network": "ns/a", "interface": "net1", "ips": ["10.0.0.5/24"]}], {sprintf("k8s.v1.cni.cncf.io/networks: ips of interface net1: %s", [hint])}],
		[{}, {}, [{"network": "ns/a", "interface": "eth0", "default": true, "ips": ["10.0.0.5/24"]}], {sprintf("v1.multus-cni.io/default-network: ips: %s", [hint])}],
		[{"berth.io/static-ips": "yes"}, {"berth.io/static-ips": `{"net1":["10.0.0.5"]}`}, [], {sprintf("berth.io/static-ips: %s", [hint])}],
	]
	bad := [{"case": c, "deny": d} |
		some c in cases
		d := static_ips.deny with input as pod(c[0], c[1], c[2])
		d != c[3]
	]
	print(bad)
	bad == []
}

test_allowed_with_the_label if {
	inp := pod({"berth.io/static-ips": "true"}, {"berth.io/static-ips": `{"net1":["10.0.0.5"]}`}, [{"network": "ns/a", "interface": "net2", "ips": ["10.0.0.6/24"]}])
	count(static_ips.deny) == 0 with input as inp
}

test_no_request_nothing_to_allow if {
	count(static_ips.deny) == 0 with input as pod({}, {}, [{"network": "ns/a", "interface": "net1"}])
}

test_ips_on_a_network_berth_does_not_serve_are_not_its_business if {
	inp := pod({}, {}, [{"network": "ns/other", "interface": "net1", "ips": ["10.0.0.5/24"]}])
	count(static_ips.deny) == 0 with input as inp
}
