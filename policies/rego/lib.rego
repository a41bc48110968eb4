# Helpers shared by the shipped policies. The engine compiles this module
# with every policy, so AttachmentPolicies may `import data.berth.lib` too.
# It decides nothing by itself.
package berth.lib

# pod_annotations and the namespace's annotations and labels, {} when absent.
pod_annotations := object.get(input, ["pod", "metadata", "annotations"], {})

namespace_annotations := object.get(input, ["namespace", "annotations"], {})

namespace_labels := object.get(input, ["namespace", "labels"], {})

# requested_networks is input.requestedNetworks, [] when absent or null.
requested_networks := input.requestedNetworks if is_array(input.requestedNetworks)

else := []

# requested maps each interface the pod asks for to its request
# (input.requestedNetworks, in the order Multus creates them).
requested[r.interface] := r if some r in requested_networks

# requested_interfaces lists them in order, for messages.
requested_interfaces := [r.interface | some r in requested_networks]

# berth_network(key) holds when Berth serves the network namespace/name.
berth_network(key) if input.networks[key].berth == true

# berth_requested lists the requested interfaces on Berth networks, in order.
berth_requested := [r.interface | some r in requested_networks; berth_network(r.network)]

# interfaces_text names the pod's interfaces for a message.
interfaces_text := concat(", ", requested_interfaces) if count(requested_interfaces) > 0

else := "it requests none"

# json_value(s) is the JSON document in string s; undefined when s is not
# valid JSON.
json_value(s) := json.unmarshal(s) if {
	is_string(s)
	json.is_valid(s)
}

# is_ip(s) holds for an IPv4 or IPv6 address without prefix length.
is_ip(s) if {
	is_string(s)
	not contains(s, "/")
	net.cidr_is_valid(concat("/", [s, "32"]))
}

# ip_family(s) is 4 or 6.
ip_family(s) := 6 if contains(s, ":")

else := 4

# is_interface_name(s) holds for a valid Linux interface name.
is_interface_name(s) if {
	is_string(s)
	regex.match(`^[!-~]{1,15}$`, s)
	not regex.match(`[/:]`, s)
	not s in {".", ".."}
}

# is_string_list(x) holds for an array of non-empty strings.
is_string_list(x) if {
	is_array(x)
	every s in x {
		is_string(s)
		s != ""
	}
}

# pool_errors(where, family, names) are the problems of the pool names a pod
# lists for IP family 4 or 6; each message starts with where.
pool_errors(where, family, names) := {msg |
	some i, name in names
	msg := pool_error(sprintf("%s[%d]", [where, i]), family, name)
}

pool_error(where, family, name) := sprintf("%s: %v is not the name of an IPPool", [where, name]) if {
	not is_string(name)
} else := sprintf("%s: IPPool %q does not exist", [where, name]) if {
	not input.pools[name]
} else := sprintf("%s: IPPool %q is an IPv%d pool", [where, name, input.pools[name].family]) if {
	input.pools[name].family != family
}
