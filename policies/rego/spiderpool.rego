# Spiderpool's annotations, in every form its releases accepted, so that
# manifests written for Spiderpool work unchanged:
#
#   ipam.spidernet.io/ippools  [{"interface":"net1","ipv4":[...],"ipv6":[...],
#                                "cleangateway":false}, ...]
#     - pools under "ipv4"/"ipv6" (current), "ipv4pools"/"ipv6pools" (older)
#       or "ipv4pool"/"ipv6pool" as a comma-separated string (oldest);
#     - "interface" in every item, or in none: then the items go to the pod's
#       Berth networks in order (Spiderpool's multi-NIC form without names);
#     - "defaultRoute": true (older) gives that interface the default route;
#       "cleangateway": true keeps it from having it.
#   ipam.spidernet.io/ippool   {"ipv4":[...],"ipv6":[...]} with the same pool
#     keys and an optional "interface" (older); without one it applies to
#     every Berth network of the pod. Ignored when ippools is present, as in
#     Spiderpool.
#   ipam.spidernet.io/default-route-nic  net1
#   namespace: ipam.spidernet.io/default-ipv4-ippool and default-ipv6-ippool
#     (older: defaultv4ippool, defaultv6ippool), JSON lists of pools, for pods
#     without the pod annotations.
#
# As Spiderpool (Go's encoding/json) did, keys match case-insensitively and
# unknown keys are ignored. Pool names may be wildcards (*, ?, [a-z], [^a]),
# expanded to the matching pools of the family in name order.
package berth.shipped.spiderpool

import data.berth.lib

ippool_key := "ipam.spidernet.io/ippool"

ippools_key := "ipam.spidernet.io/ippools"

route_key := "ipam.spidernet.io/default-route-nic"

namespace_keys := {
	4: ["ipam.spidernet.io/default-ipv4-ippool", "ipam.spidernet.io/defaultv4ippool"],
	6: ["ipam.spidernet.io/default-ipv6-ippool", "ipam.spidernet.io/defaultv6ippool"],
}

# Pool keys per family, newest first: the first present is used.
pool_keys := {4: ["ipv4", "ipv4pools", "ipv4pool"], 6: ["ipv6", "ipv6pools", "ipv6pool"]}

# --- items of both pod annotations --------------------------------------------

# norm(obj) lower-cases the keys of a JSON object; keys differing only in
# case are an error (item_errors), since their order decided in Go.
norm(obj) := {lower(k): v | some k, v in obj; not ambiguous(obj, lower(k))}

ambiguous(obj, lk) if count({k | some k, _ in obj; lower(k) == lk}) > 1

pool_key(item, family) := [k | some k in pool_keys[family]; k in object.keys(item)][0]

# raw_names(item, family) are the pool names as written: a list, or the
# oldest comma-separated string.
raw_names(item, family) := item[pool_key(item, family)] if is_array(item[pool_key(item, family)])

else := [trim_space(s) | some s in split(item[pool_key(item, family)], ","); trim_space(s) != ""] if is_string(item[pool_key(item, family)])

# names(item, family) are the pools after wildcard expansion.
names(item, family) := expand(raw_names(item, family), family)

names(item, family) := [] if not pool_key(item, family)

expand(raw, family) := [n | some name in raw; some n in expand_one(name, family)]

expand_one(name, family) := sort([p | some p, pool in input.pools; pool.family == family; glob.match(replace(name, "[^", "[!"), null, p)]) if {
	wildcard(name)
	valid_pattern(name)
} else := [name]

wildcard(name) if {
	is_string(name)
	regex.match(`[*?\[]`, name)
}

valid_pattern(name) if {
	is_string(name)
	regex.match(`^([-a-z0-9.*?]|\[[!^]?[-a-z0-9.]+\])+$`, name)
}

# item_errors(where, raw) are the problems of one item, raw as written.
item_errors(where, raw) := {sprintf("%smust be a JSON object", [prefix(where)])} if not is_object(raw)

else := (({sprintf("%skeys %s differ only in case", [prefix(where), concat(" and ", sort([k | some k, _ in raw; lower(k) == lk]))]) | some k, _ in raw; lk := lower(k); ambiguous(raw, lk)} | field_errors(where, norm(raw))) | family_errors(where, norm(raw), 4)) | family_errors(where, norm(raw), 6)

field_errors(where, item) := ({sprintf("%s: %v is not a valid interface name", [path(where, "interface"), item.interface]) | "interface" in object.keys(item); not lib.is_interface_name(item.interface)} | {sprintf("%s: %v is not true or false", [path(where, k), item[k]]) | some k in ["cleangateway", "defaultroute"]; k in object.keys(item); not is_boolean(item[k])}) | {sprintf("%snames no pool: give ipv4, ipv6 or both", [prefix(where)]) | not pool_key(item, 4); not pool_key(item, 6)}

family_errors(where, item, family) := ({sprintf("%s: must be a list of IPPool names", [path(where, pool_key(item, family))]) |
	pool_key(item, family)
	not raw_names(item, family)
} | {msg |
	some i, name in raw_names(item, family)
	msg := pattern_error(sprintf("%s[%d]", [path(where, pool_key(item, family)), i]), name, family)
}) | {msg |
	plain := [n | some n in raw_names(item, family); not wildcard(n)]
	some msg in lib.pool_errors(path(where, pool_key(item, family)), family, plain)
}

pattern_error(where, name, family) := sprintf("%s: %v is not the name of an IPPool", [where, name]) if {
	not is_string(name)
} else := sprintf("%s: %q is not a valid pool name pattern (use *, ? and [a-z])", [where, name]) if {
	wildcard(name)
	not valid_pattern(name)
} else := sprintf("%s: %q matches no IPv%d IPPool", [where, name, family]) if {
	wildcard(name)
	expand_one(name, family) == []
}

prefix(where) := sprintf("%s: ", [where]) if where != ""

else := ""

path(where, key) := sprintf("%s.%s", [where, key]) if where != ""

else := key

# --- ipam.spidernet.io/ippools ----------------------------------------------------

list_value := lib.json_value(lib.pod_annotations[ippools_key])

deny contains sprintf("%s: %s", [ippools_key, msg]) if some msg in list_errors

list_errors contains "not valid JSON" if {
	lib.pod_annotations[ippools_key]
	not list_value
}

list_errors contains "must be a JSON list of pool selections" if {
	list_value
	not is_array(list_value)
}

list_errors contains "must list at least one item" if list_value == []

list_errors contains msg if {
	is_array(list_value)
	some i, raw in list_value
	some msg in item_errors(sprintf("[%d]", [i]), raw)
}

list_items := [norm(raw) | some raw in list_value; is_object(raw)] if is_array(list_value)

named := [item | some item in list_items; item.interface]

list_errors contains "interface must be given in every item or in none" if {
	count(named) > 0
	count(named) != count(list_value)
}

list_errors contains sprintf("[%d].interface: %q is already named by item %d", [j, b.interface, i]) if {
	some i, a in list_items
	some j, b in list_items
	i < j
	a.interface == b.interface
}

list_errors contains sprintf("[%d].interface: %q is not one of the pod's networks (%s)", [i, item.interface, lib.interfaces_text]) if {
	some i, item in list_items
	lib.is_interface_name(item.interface)
	not lib.requested[item.interface]
}

list_errors contains sprintf("%d items without interface, but the pod has %d Berth networks (%s)", [count(list_items), count(lib.berth_requested), concat(", ", lib.berth_requested)]) if {
	count(list_items) > 0
	count(named) == 0
	count(list_items) > count(lib.berth_requested)
}

# by_list maps interfaces to their item, once the annotation is valid.
by_list[item.interface] := item if {
	count(list_errors) == 0
	some item in named
}

by_list[lib.berth_requested[i]] := item if {
	count(list_errors) == 0
	count(named) == 0
	some i, item in list_items
}

# --- ipam.spidernet.io/ippool -------------------------------------------------------

single_value := lib.json_value(lib.pod_annotations[ippool_key])

# Spiderpool reads ippool only without ippools.
single_used if {
	lib.pod_annotations[ippool_key]
	not lib.pod_annotations[ippools_key]
}

deny contains sprintf("%s: %s", [ippool_key, msg]) if {
	single_used
	some msg in single_errors
}

single_errors contains "not valid JSON" if not single_value

single_errors contains msg if some msg in item_errors("", single_value)

single_errors contains sprintf("interface: %q is not one of the pod's networks (%s)", [single_item.interface, lib.interfaces_text]) if {
	lib.is_interface_name(single_item.interface)
	not lib.requested[single_item.interface]
}

single_item := norm(single_value) if is_object(single_value)

by_single[single_item.interface] := single_item if {
	single_used
	count(single_errors) == 0
}

by_single[iface] := single_item if {
	single_used
	count(single_errors) == 0
	not single_item.interface
	some iface in lib.berth_requested
}

# --- namespace defaults -----------------------------------------------------------

pod_annotated if lib.pod_annotations[ippools_key]

pod_annotated if lib.pod_annotations[ippool_key]

# namespace_key(family) is the annotation used, newest first.
namespace_key(family) := [k | some k in namespace_keys[family]; lib.namespace_annotations[k]][0]

namespace_value(family) := lib.json_value(lib.namespace_annotations[namespace_key(family)])

namespace_used if {
	not pod_annotated
	count(lib.berth_requested) > 0
	some family in [4, 6]
	namespace_key(family)
}

deny contains sprintf("namespace %q: annotation %s: %s", [input.namespace.name, namespace_key(family), msg]) if {
	namespace_used
	some family in [4, 6]
	some msg in namespace_errors(family)
}

namespace_errors(family) := {"not valid JSON"} if {
	namespace_key(family)
	not namespace_value(family)
} else := {"must be a JSON list of IPPool names"} if {
	namespace_key(family)
	not is_array(namespace_value(family))
} else := {msg |
	some i, name in namespace_value(family)
	msg := pattern_error(sprintf("[%d]", [i]), name, family)
} | lib.pool_errors("", family, [n | some n in namespace_value(family); not wildcard(n)]) if {
	namespace_key(family)
} else := set()

namespace_item := {key: namespace_value(family) |
	some family in [4, 6]
	namespace_key(family)
	key := pool_keys[family][0]
}

by_namespace[iface] := namespace_item if {
	namespace_used
	every family in [4, 6] {
		count(namespace_errors(family)) == 0
	}
	some iface in lib.berth_requested
}

# --- ipam.spidernet.io/default-route-nic --------------------------------------------

route_value := lib.pod_annotations[route_key]

deny contains sprintf("%s: %q is not a valid interface name", [route_key, route_value]) if {
	route_value
	not lib.is_interface_name(route_value)
}

deny contains sprintf("%s: %q is not one of the pod's networks (%s) nor eth0", [route_key, route_value, lib.interfaces_text]) if {
	lib.is_interface_name(route_value)
	route_value != "eth0"
	not lib.requested[route_value]
}

routed := sort([iface | some iface, item in selections; item.defaultroute == true])

deny contains sprintf("%s: defaultRoute is true for %s; at most one interface may carry the default route", [ippools_key, concat(", ", routed)]) if {
	not route_value
	count(routed) > 1
}

chosen_route := route_value if {
	lib.is_interface_name(route_value)
	route_value == "eth0"
} else := route_value if {
	lib.requested[route_value]
} else := routed[0] if {
	not route_value
	count(routed) == 1
}

deny contains sprintf("%s: interface %s has cleangateway true and cannot carry the default route", [ippools_key, chosen_route]) if {
	selections[chosen_route].cleangateway == true
}

default_route := chosen_route if not selections[chosen_route].cleangateway == true

# --- decisions ------------------------------------------------------------

selections := object.union(object.union(by_namespace, by_single), by_list)

attachments contains {
	"interface": iface,
	"network": lib.requested[iface].network,
	"ipv4": names(item, 4),
	"ipv6": names(item, 6),
} if {
	some iface, item in selections
}
