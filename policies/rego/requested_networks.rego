# Grants every network the pod requests through Multus that Berth serves:
# the interface Multus will create, the "mac" and "ips" (static addresses)
# of its selection element, and the default route of the element carrying
# "default-route". Pools are left to the policies before it; where none
# decides them, the webhook uses the Network's pools, then the default pools
# serving it. Networks Berth does not serve are not touched.
package berth.shipped.requested_networks

import data.berth.lib

networks_annotation := "k8s.v1.cni.cncf.io/networks"

attachments contains object.union(
	object.union(
		{"interface": r.interface, "network": r.network},
		mac(r),
	),
	static_ips(r),
) if {
	some r in lib.requested_networks
	lib.berth_network(r.network)
}

mac(r) := {"mac": r.mac} if r.mac != ""

else := {}

# Multus carries addresses in CIDR form; the allocator wants the address.
static_ips(r) := {"staticIPs": [split(ip, "/")[0] | some ip in r.ips]} if count(object.get(r, "ips", [])) > 0

else := {}

routed := [r.interface | some r in lib.requested_networks; r.defaultRoute]

default_route := routed[0] if count(routed) == 1

deny contains sprintf("%s: default-route is set on %d networks (%s); at most one may carry the default route", [networks_annotation, count(routed), concat(", ", routed)]) if {
	count(routed) > 1
}
