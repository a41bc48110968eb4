# Honours Berth's pod annotations for the networks the pod requests:
#
#   berth.io/ippool:            {"interface":"net1","ipv4":["p1"],"ipv6":["p1-v6"]}
#                               (without "interface": every Berth network of
#                               the pod that berth.io/ippools does not name)
#   berth.io/ippools:           a list of those, "interface" required
#   berth.io/static-ips:        {"net1":["10.6.212.150"]} (whether they are
#                               allowed is the static-ips policy's call)
#   berth.io/default-route-nic: net1 (or eth0 to keep it on the cluster network)
#
# Pools listed for one family and not the other mean no address of the
# other. A malformed annotation is denied with what is wrong, and decides
# nothing.
package berth.shipped.annotations

import data.berth.lib

ippool := "berth.io/ippool"

ippools := "berth.io/ippools"

static_ips := "berth.io/static-ips"

default_route_nic := "berth.io/default-route-nic"

entry_fields := {"interface", "ipv4", "ipv6"}

# --- berth.io/ippools ----------------------------------------------------

list_value := lib.json_value(lib.pod_annotations[ippools])

deny contains sprintf("%s: %s", [ippools, msg]) if {
	some msg in list_errors
}

# list_valid is the cheap check of a well-formed annotation; the messages of
# list_errors are built only when it fails.
list_valid if {
	is_array(list_value)
	count(list_value) > 0
	every entry in list_value {
		valid_entry(entry, true)
	}
	count({entry.interface | some entry in list_value}) == count(list_value)
}

# Never ignore an annotation silently, should the two checks disagree.
deny contains sprintf("%s: malformed", [ippools]) if {
	lib.pod_annotations[ippools]
	not list_valid
	count(list_errors) == 0
}

list_errors contains "not valid JSON" if {
	lib.pod_annotations[ippools]
	not list_valid
	not list_value
}

list_errors contains `must be a JSON list of {"interface":...,"ipv4":[...],"ipv6":[...]}` if {
	not is_array(list_value)
	list_value
}

list_errors contains "must list at least one interface" if list_value == []

list_errors contains msg if {
	not list_valid
	is_array(list_value)
	some i, entry in list_value
	some msg in entry_errors(sprintf("[%d]", [i]), entry, true)
}

list_errors contains sprintf("[%d].interface: %q is already named by entry %d", [j, entry.interface, i]) if {
	not list_valid
	is_array(list_value)
	some i, first in list_value
	some j, entry in list_value
	i < j
	first.interface == entry.interface
}

# by_list maps each interface named in a valid berth.io/ippools to its entry.
by_list[entry.interface] := entry if {
	list_valid
	some entry in list_value
}

# --- berth.io/ippool ------------------------------------------------------

single_value := lib.json_value(lib.pod_annotations[ippool])

deny contains sprintf("%s: %s", [ippool, msg]) if {
	some msg in single_errors
}

single_valid if {
	valid_entry(single_value, false)
	not named_by_list(single_value)
}

# A helper, so that an entry without interface is not named: within `not`,
# an undefined single_value.interface would make the whole rule undefined.
named_by_list(entry) if by_list[entry.interface]

deny contains sprintf("%s: malformed", [ippool]) if {
	lib.pod_annotations[ippool]
	not single_valid
	count(single_errors) == 0
}

single_errors contains "not valid JSON" if {
	lib.pod_annotations[ippool]
	not single_value
}

single_errors contains msg if {
	not single_valid
	some msg in entry_errors("", single_value, false)
}

single_errors contains sprintf("interface %q is also named by %s", [single_value.interface, ippools]) if {
	by_list[single_value.interface]
}

# by_single maps the interfaces berth.io/ippool applies to to its entry.
by_single[iface] := single_value if {
	single_valid
	iface := single_value.interface
}

by_single[iface] := single_value if {
	single_valid
	not single_value.interface
	some iface in lib.berth_requested
	not by_list[iface]
}

# --- entries of both ------------------------------------------------------

# valid_entry(entry, need_interface) holds for a well-formed pool selection.
valid_entry(entry, need_interface) if {
	is_object(entry)
	every k, _ in entry {
		k in entry_fields
	}
	interface_ok(entry, need_interface)
	count(object.keys(entry) & {"ipv4", "ipv6"}) > 0
	family_ok(entry, "ipv4", 4)
	family_ok(entry, "ipv6", 6)
}

interface_ok(entry, false) if not "interface" in object.keys(entry)

interface_ok(entry, _) if lib.requested[entry.interface]

family_ok(entry, key, _) if not key in object.keys(entry)

family_ok(entry, key, family) if {
	is_array(entry[key])
	every name in entry[key] {
		input.pools[name].family == family
	}
}

# entry_errors(where, entry, need_interface) are the problems of one pool
# selection object; where locates it in the annotation ("" or "[2]").
entry_errors(where, entry, _) := {sprintf(`%smust be a JSON object such as {"interface":"net1","ipv4":["pool"]}`, [prefix(where)])} if {
	not is_object(entry)
}

entry_errors(where, entry, need_interface) := (((unknown_fields(where, entry) | {m | m := interface_error(where, entry, need_interface)}) | {m | m := pools_missing(where, entry)}) | family_errors(where, entry, "ipv4", 4)) | family_errors(where, entry, "ipv6", 6) if {
	is_object(entry)
}

prefix(where) := sprintf("%s: ", [where]) if where != ""

else := ""

field_path(where, name) := sprintf("%s.%s", [where, name]) if where != ""

else := name

unknown_fields(where, entry) := {sprintf("%sunknown field %q (known: interface, ipv4, ipv6)", [prefix(where), k]) |
	some k, _ in entry
	not k in entry_fields
}

interface_error(where, entry, need_interface) := sprintf("%sinterface is required", [prefix(where)]) if {
	need_interface
	not "interface" in object.keys(entry)
} else := sprintf("%s: %v is not a valid interface name", [field_path(where, "interface"), entry.interface]) if {
	"interface" in object.keys(entry)
	not lib.is_interface_name(entry.interface)
} else := sprintf("%s: %q is not one of the pod's networks (%s)", [field_path(where, "interface"), entry.interface, lib.interfaces_text]) if {
	"interface" in object.keys(entry)
	not lib.requested[entry.interface]
}

pools_missing(where, entry) := sprintf("%snames no pool: give ipv4, ipv6 or both", [prefix(where)]) if {
	not "ipv4" in object.keys(entry)
	not "ipv6" in object.keys(entry)
}

family_errors(where, entry, key, family) := errs if {
	is_array(entry[key])
	errs := lib.pool_errors(field_path(where, key), family, entry[key])
} else := {sprintf("%s: must be a list of IPPool names", [field_path(where, key)])} if {
	key in object.keys(entry)
} else := set()

# --- berth.io/static-ips ----------------------------------------------------

static_value := lib.json_value(lib.pod_annotations[static_ips])

deny contains sprintf("%s: %s", [static_ips, msg]) if {
	some msg in static_errors
}

static_errors contains "not valid JSON" if {
	lib.pod_annotations[static_ips]
	not static_value
}

static_errors contains `must be a JSON object of interface to addresses, such as {"net1":["10.6.212.150"]}` if {
	not is_object(static_value)
	static_value
}

static_errors contains sprintf("%s: %q is not one of the pod's networks (%s)", [iface, iface, lib.interfaces_text]) if {
	is_object(static_value)
	some iface, _ in static_value
	not lib.requested[iface]
}

static_errors contains sprintf("%s: must be a list of one address per IP family", [iface]) if {
	is_object(static_value)
	some iface, addrs in static_value
	not lib.is_string_list(addrs)
}

static_errors contains sprintf("%s: must be a list of one address per IP family", [iface]) if {
	is_object(static_value)
	some iface, addrs in static_value
	addrs == []
}

static_errors contains sprintf("%s[%d]: %q is not an IP address", [iface, i, addr]) if {
	is_object(static_value)
	some iface, addrs in static_value
	lib.is_string_list(addrs)
	some i, addr in addrs
	not lib.is_ip(addr)
}

static_errors contains sprintf("%s[%d]: %s is a second IPv%d address; give at most one per family", [iface, j, addrs[j], lib.ip_family(addrs[j])]) if {
	is_object(static_value)
	some iface, addrs in static_value
	lib.is_string_list(addrs)
	some i, j
	i < j
	lib.is_ip(addrs[i])
	lib.is_ip(addrs[j])
	lib.ip_family(addrs[i]) == lib.ip_family(addrs[j])
}

# --- berth.io/default-route-nic ------------------------------------------------

route_value := lib.pod_annotations[default_route_nic]

deny contains sprintf("%s: %q is not a valid interface name", [default_route_nic, route_value]) if {
	not lib.is_interface_name(route_value)
	route_value
}

deny contains sprintf("%s: %q is not one of the pod's networks (%s) nor eth0", [default_route_nic, route_value, lib.interfaces_text]) if {
	lib.is_interface_name(route_value)
	route_value != "eth0"
	not lib.requested[route_value]
}

default_route := route_value if route_value == "eth0"

default_route := route_value if lib.requested[route_value]

# --- decisions ----------------------------------------------------------

selections := object.union(by_single, by_list)

attachments contains {
	"interface": iface,
	"network": lib.requested[iface].network,
	"ipv4": object.get(entry, "ipv4", []),
	"ipv6": object.get(entry, "ipv6", []),
} if {
	some iface, entry in selections
}

attachments contains {
	"interface": iface,
	"network": lib.requested[iface].network,
	"staticIPs": addrs,
} if {
	is_object(static_value)
	count(static_errors) == 0
	is_object(static_value)
	some iface, addrs in static_value
}
