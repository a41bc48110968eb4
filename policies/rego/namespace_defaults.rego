# Namespace defaults, set by whoever administers the namespace:
#
#   berth.io/default-networks: the networks of pods that request none, in
#     Multus's forms: "storage, other-ns/mgmt@mgmt0" or a JSON list of
#     {"name":...,"namespace":...,"interface":...}; unnamed interfaces are
#     net1, net2... by position, as Multus names them.
#   berth.io/default-ippools: pools for the pod's Berth networks that no pod
#     annotation chose pools for: {"ipv4":[...],"ipv6":[...]}, or a list of
#     those, each optionally limited to a "network" (namespace/name, or a
#     name in any namespace); an entry naming the network wins over one
#     without.
#
# A malformed namespace annotation denies the pods it applies to, naming the
# namespace and the annotation.
package berth.shipped.namespace_defaults

import data.berth.lib

networks_key := "berth.io/default-networks"

pools_key := "berth.io/default-ippools"

where(key) := sprintf("namespace %q: annotation %s", [input.namespace.name, key])

# --- berth.io/default-networks ------------------------------------------------

networks_value := lib.namespace_annotations[networks_key]

applies if count(lib.requested_networks) == 0

# raw_elements are the elements as written, each {"name", "namespace"?,
# "interface"?}, from either form.
raw_elements := lib.json_value(networks_value) if startswith(trim_space(networks_value), "[")

else := [short_form(trim_space(item)) | some item in split(networks_value, ",")]

short_form(item) := object.union(iface_part(parts), ns_name(parts[0])) if {
	parts := split(item, "@")
	count(parts) <= 2
} else := {"invalid": item}

iface_part(parts) := {"interface": parts[1]} if count(parts) == 2

else := {}

ns_name(s) := {"namespace": p[0], "name": p[1]} if {
	p := split(s, "/")
	count(p) == 2
} else := {"name": s} if not contains(s, "/")

else := {"invalid": s}

deny contains sprintf("%s: %s", [where(networks_key), msg]) if {
	applies
	some msg in network_errors
}

network_errors contains "not valid JSON" if {
	startswith(trim_space(networks_value), "[")
	not lib.json_value(networks_value)
}

network_errors contains `must be "name, namespace/name@interface, ..." or a JSON list of {"name":...}` if {
	not is_array(raw_elements)
	raw_elements
}

network_errors contains sprintf("element %d: %s", [i, msg]) if {
	is_array(raw_elements)
	some i, e in raw_elements
	some msg in element_errors(e)
}

network_errors contains sprintf("element %d: interface %q is already element %d's", [j, interface_of(j, b), i]) if {
	is_array(raw_elements)
	some i, a in raw_elements
	some j, b in raw_elements
	i < j
	interface_of(i, a) == interface_of(j, b)
}

element_errors(e) := {sprintf("%v is not a network selection element", [e])} if not is_object(e)

else := {sprintf("%q is not [namespace/]name[@interface]", [e.invalid])} if e.invalid

else := ({msg |
	some msg in [
	sprintf("name %v is not a valid NetworkAttachmentDefinition name", [object.get(e, "name", null)]) |
		not dns_subdomain(object.get(e, "name", null))
	]
} | {msg |
	some msg in [
	sprintf("namespace %v is not a valid namespace name", [e.namespace]) |
		"namespace" in object.keys(e)
		not dns_label(e.namespace)
	]
}) | {msg |
	some msg in [
	sprintf("interface %v is not a valid interface name", [e.interface]) |
		"interface" in object.keys(e)
		not lib.is_interface_name(e.interface)
	]
}

dns_label(s) if {
	is_string(s)
	regex.match(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`, s)
}

dns_subdomain(s) if {
	is_string(s)
	count(s) <= 253
	regex.match(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`, s)
}

interface_of(i, e) := e.interface if is_string(e.interface)

else := sprintf("net%d", [i + 1])

# default_networks are the valid elements as {"interface", "network"}.
default_networks := [{"interface": interface_of(i, e), "network": sprintf("%s/%s", [object.get(e, "namespace", input.namespace.name), e.name])} |
	applies
	count(network_errors) == 0
	some i, e in raw_elements
]

# --- berth.io/default-ippools ---------------------------------------------------

pools_value := lib.json_value(lib.namespace_annotations[pools_key])

pool_entries := [pools_value] if is_object(pools_value)

else := pools_value if is_array(pools_value)

# The pod's Berth networks: those it requests, else the namespace's.
pod_networks := [{"interface": r.interface, "network": r.network} | some r in lib.requested_networks; lib.berth_network(r.network)] if not applies

else := [n | some n in default_networks; lib.berth_network(n.network)]

deny contains sprintf("%s: %s", [where(pools_key), msg]) if {
	count(pod_networks) > 0
	some msg in pool_errors
}

pool_errors contains "not valid JSON" if {
	lib.namespace_annotations[pools_key]
	not pools_value
}

pool_errors contains `must be {"ipv4":[...],"ipv6":[...]} or a list of those` if {
	pools_value
	not pool_entries
}

pool_errors contains sprintf("%s%s", [entry_where(pools_value, i), msg]) if {
	some i, entry in pool_entries
	some msg in pool_entry_errors(entry)
}

entry_where(v, i) := sprintf("[%d]: ", [i]) if is_array(v)

else := ""

pool_entry_errors(entry) := {sprintf("%v is not an object", [entry])} if not is_object(entry)

else := ((({sprintf("unknown field %q (known: network, ipv4, ipv6)", [k]) | some k, _ in entry; not k in {"network", "ipv4", "ipv6"}} | {"names no pool: give ipv4, ipv6 or both" | not entry.ipv4; not entry.ipv6}) | {sprintf("network: %v is not namespace/name or name", [entry.network]) | "network" in object.keys(entry); not is_string(entry.network)}) | family_errors(entry, "ipv4", 4)) | family_errors(entry, "ipv6", 6)

family_errors(entry, key, family) := lib.pool_errors(key, family, entry[key]) if is_array(entry[key])

else := {sprintf("%s: must be a list of IPPool names", [key])} if key in object.keys(entry)

else := set()

# entry_for(network) is the entry applying to network: the first naming it,
# else the first naming no network.
entry_for(network) := pool_entries[min(named)] if {
	named := [i | some i, e in pool_entries; names_network(e, network)]
	count(named) > 0
} else := pool_entries[min(unnamed)] if {
	unnamed := [i | some i, e in pool_entries; not "network" in object.keys(e)]
	count(unnamed) > 0
}

names_network(e, network) if e.network == network

names_network(e, network) if e.network == split(network, "/")[1]

# --- decisions ----------------------------------------------------------

attachments contains n if some n in default_networks

attachments contains object.union(n, {"ipv4": object.get(entry, "ipv4", []), "ipv6": object.get(entry, "ipv6", [])}) if {
	count(pool_errors) == 0
	some n in pod_networks
	entry := entry_for(n.network)
}
