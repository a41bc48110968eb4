# A pod may only use a pool that selects it: the pool's namespace and pod
# selectors must match (input.pools[_].matchesNamespace and matchesPod,
# computed with Kubernetes' label-selector semantics), and a pool limited to
# some networks must serve the attachment's network. This is what keeps one
# tenant from taking another tenant's addresses by naming its pool. It checks
# the merged decision (input.decision), whichever policy chose the pools.
package berth.shipped.pool_selectors

deny contains msg if {
	some att in input.decision.attachments
	some name in array.concat(object.get(att, "ipv4", []), object.get(att, "ipv6", []))
	msg := pool_denial(att, name)
}

pool_denial(att, name) := sprintf("interface %s: IPPool %q does not exist", [att.interface, name]) if {
	not input.pools[name]
} else := sprintf("interface %s: IPPool %q does not serve namespace %q: its namespaceSelector does not match the namespace's labels", [att.interface, name, input.namespace.name]) if {
	not input.pools[name].matchesNamespace
} else := sprintf("interface %s: IPPool %q does not serve this pod: its podSelector does not match the pod's labels", [att.interface, name]) if {
	not input.pools[name].matchesPod
} else := sprintf("interface %s: IPPool %q serves networks %s, not %s", [att.interface, name, concat(", ", input.pools[name].networks), att.network]) if {
	not serves(input.pools[name], att.network)
}

# serves(pool, network): pool.networks empty, or naming the network (the
# NAD the pod asks for) or the Berth Network generating it (another name
# with berth.io/nad-name), as namespace/name or by the bare name.
serves(pool, _) if count(object.get(pool, "networks", [])) == 0

serves(pool, network) if names_network(pool, network)

serves(pool, network) if names_network(pool, input.networks[network].network)

names_network(pool, network) if network in pool.networks

names_network(pool, network) if {
	name := split(network, "/")[1]
	name in pool.networks
}
