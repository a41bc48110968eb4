# Static addresses only where allowed. A pod may ask for specific addresses
# (berth.io/static-ips, or "ips" in a Multus selection element) only in a
# namespace an administrator labelled berth.io/static-ips=true: namespace
# labels are the cluster administrator's, while anyone who may create a pod
# writes its annotations. Addresses an AttachmentPolicy decides are not
# checked: they are the administrator's own.
package berth.shipped.static_ips

import data.berth.lib

label := "berth.io/static-ips"

allowed if lib.namespace_labels[label] == "true"

hint := sprintf("static addresses are not allowed in namespace %q (an administrator allows them with the namespace label %s=true)", [input.namespace.name, label])

deny contains sprintf("%s: %s", [label, hint]) if {
	not allowed
	lib.pod_annotations[label]
}

# Multus "ips" on a network Berth does not serve are that network's IPAM's
# business, not a Berth reservation: only Berth networks are checked.
deny contains sprintf("k8s.v1.cni.cncf.io/networks: ips of interface %s: %s", [r.interface, hint]) if {
	not allowed
	some r in lib.requested_networks
	count(object.get(r, "ips", [])) > 0
	lib.berth_network(r.network)
	not r["default"]
}

deny contains sprintf("v1.multus-cni.io/default-network: ips: %s", [hint]) if {
	not allowed
	some r in lib.requested_networks
	count(object.get(r, "ips", [])) > 0
	lib.berth_network(r.network)
	r["default"]
}
