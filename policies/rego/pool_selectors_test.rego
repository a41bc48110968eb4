package berth.shipped.pool_selectors_test

import data.berth.shipped.pool_selectors

base := {
	"pod": {"metadata": {"name": "p", "namespace": "tenant-a"}},
	"namespace": {"name": "tenant-a"},
	"pools": {
		"open": {"name": "open", "family": 4, "matchesNamespace": true, "matchesPod": true},
		"tenant-b": {"name": "tenant-b", "family": 4, "matchesNamespace": false, "matchesPod": true},
		"db-only": {"name": "db-only", "family": 6, "matchesNamespace": true, "matchesPod": false},
		"storage-only": {"name": "storage-only", "family": 4, "matchesNamespace": true, "matchesPod": true, "networks": ["storage"]},
		"qualified": {"name": "qualified", "family": 4, "matchesNamespace": true, "matchesPod": true, "networks": ["tenant-a/mgmt"]},
	},
}

decide(attachments) := object.union(base, {"decision": {"attachments": attachments}})

test_pools_that_select_the_pod_pass if {
	inp := decide([
		{"interface": "net1", "network": "tenant-a/storage", "ipv4": ["open", "storage-only"]},
		{"interface": "net2", "network": "tenant-a/mgmt", "ipv4": ["qualified"]},
		{"interface": "net3", "network": "tenant-a/mgmt"},
	])
	count(pool_selectors.deny) == 0 with input as inp
}

test_another_tenants_pool_is_denied if {
	inp := decide([
		{"interface": "net1", "network": "tenant-a/storage", "ipv4": ["open", "tenant-b"], "ipv6": ["db-only"]},
		{"interface": "net2", "network": "tenant-a/mgmt", "ipv4": ["storage-only", "gone"]},
	])
	pool_selectors.deny == {
		`interface net1: IPPool "tenant-b" does not serve namespace "tenant-a": its namespaceSelector does not match the namespace's labels`,
		`interface net1: IPPool "db-only" does not serve this pod: its podSelector does not match the pod's labels`,
		`interface net2: IPPool "storage-only" serves networks storage, not tenant-a/mgmt`,
		`interface net2: IPPool "gone" does not exist`,
	} with input as inp
}

# With berth.io/nad-name the pod asks for the NAD (tenant-a/blue-nad); a pool
# may name the Berth Network generating it instead.
test_pool_naming_the_network_of_a_renamed_nad_serves_it if {
	inp := object.union(decide([{"interface": "net1", "network": "tenant-a/blue-nad", "ipv4": ["blue"]}]), {
		"pools": {"blue": {"name": "blue", "family": 4, "matchesNamespace": true, "matchesPod": true, "networks": ["blue"]}},
		"networks": {"tenant-a/blue-nad": {"namespace": "tenant-a", "name": "blue-nad", "network": "tenant-a/blue", "berth": true}},
	})
	count(pool_selectors.deny) == 0 with input as inp
}

test_pool_of_another_network_still_denied_for_a_renamed_nad if {
	inp := object.union(decide([{"interface": "net1", "network": "tenant-a/blue-nad", "ipv4": ["red"]}]), {
		"pools": {"red": {"name": "red", "family": 4, "matchesNamespace": true, "matchesPod": true, "networks": ["red"]}},
		"networks": {"tenant-a/blue-nad": {"namespace": "tenant-a", "name": "blue-nad", "network": "tenant-a/blue", "berth": true}},
	})
	pool_selectors.deny == {`interface net1: IPPool "red" serves networks red, not tenant-a/blue-nad`} with input as inp
}
