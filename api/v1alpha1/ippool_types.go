package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPPoolSpec describes one subnet and the addresses of it that Berth may hand
// out. A pool has exactly one IP family, the family of its subnet.
//
// The rules below guard what OpenAPI formats cannot express. Each one first
// checks that the values it reads parse, so a malformed subnet is reported
// once, by the rule on the field itself, and not again as a CEL runtime error.
//
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.gateway) || !isIP(self.gateway) || ip(self.gateway).family() == cidr(self.subnet).ip().family()",message="spec.gateway must be of the IP family of spec.subnet",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.gateway) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.subnet).ip().family() || cidr(self.subnet).containsIP(self.gateway)",message="spec.gateway must be inside spec.subnet",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.ips) || self.ips.all(r, (r.indexOf('-') < 0 ? [r] : [r.substring(0, r.indexOf('-')), r.substring(r.indexOf('-') + 1)]).all(a, !isIP(a) || ip(a).family() == cidr(self.subnet).ip().family()))",message="addresses in spec.ips must be of the IP family of spec.subnet",fieldPath=".ips"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.ips) || self.ips.all(r, (r.indexOf('-') < 0 ? [r] : [r.substring(0, r.indexOf('-')), r.substring(r.indexOf('-') + 1)]).all(a, !isIP(a) || ip(a).family() != cidr(self.subnet).ip().family() || cidr(self.subnet).containsIP(a)))",message="every range in spec.ips must be inside spec.subnet",fieldPath=".ips"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.excludeIPs) || self.excludeIPs.all(r, (r.indexOf('-') < 0 ? [r] : [r.substring(0, r.indexOf('-')), r.substring(r.indexOf('-') + 1)]).all(a, !isIP(a) || ip(a).family() == cidr(self.subnet).ip().family()))",message="addresses in spec.excludeIPs must be of the IP family of spec.subnet",fieldPath=".excludeIPs"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.routes) || self.routes.all(r, !isCIDR(r.dst) || cidr(r.dst).ip().family() == cidr(self.subnet).ip().family())",message="route destinations in spec.routes must be of the IP family of spec.subnet",fieldPath=".routes"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.subnet) || !has(self.routes) || self.routes.all(r, !has(r.gw) || !isIP(r.gw) || ip(r.gw).family() == cidr(self.subnet).ip().family())",message="route gateways in spec.routes must be of the IP family of spec.subnet",fieldPath=".routes"
type IPPoolSpec struct {
	// Subnet is the network of the pool in CIDR form, e.g. 10.6.0.0/16 or
	// fd00:6::/64. It must be the network address itself.
	// +required
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="spec.subnet must be a CIDR such as 10.6.0.0/16 or fd00:6::/64"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="spec.subnet must be a network address (host bits zero)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.subnet is immutable: addresses are reserved from it"
	Subnet string `json:"subnet"`

	// IPs are the addresses that may be handed out: single addresses and
	// inclusive ranges "first-last". Empty means the whole subnet.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=512
	// +kubebuilder:validation:items:MaxLength=81
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || (self.indexOf('-') > 0 && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1)))",message="must be an IP address or a range \"first-last\" of IP addresses"
	IPs []string `json:"ips,omitempty"`

	// ExcludeIPs are addresses never handed out, in the form of IPs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=512
	// +kubebuilder:validation:items:MaxLength=81
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || (self.indexOf('-') > 0 && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1)))",message="must be an IP address or a range \"first-last\" of IP addresses"
	ExcludeIPs []string `json:"excludeIPs,omitempty"`

	// Gateway is the default gateway of the subnet. It is never handed out.
	// +optional
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="spec.gateway must be an IP address"
	Gateway *string `json:"gateway,omitempty"`

	// Routes are extra routes for interfaces with an address of this pool.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Routes []Route `json:"routes,omitempty"`

	// DNS is handed to the pod's interface by berth-ipam.
	// +optional
	DNS *DNS `json:"dns,omitempty"`

	// VLAN is the 802.1Q VLAN ID of the subnet, informational only: Berth
	// does not read it (a Network's own vlanID decides the tagging); 0
	// means untagged.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	VLAN *int32 `json:"vlan,omitempty"`

	// Default pools serve pods that name no pool for a network.
	// +optional
	// +kubebuilder:default=false
	Default bool `json:"default,omitempty"`

	// Disable stops new reservations; existing ones are kept.
	// +optional
	// +kubebuilder:default=false
	Disable bool `json:"disable,omitempty"`

	// NamespaceSelector limits the pool to pods in matching namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// PodSelector limits the pool to matching pods.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// NodeSelector binds the pool to matching nodes: pods using it get a
	// required node affinity for them.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// NodeNames binds the pool to these nodes, in addition to NodeSelector.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=253
	NodeNames []string `json:"nodeNames,omitempty"`

	// Networks are the Networks this pool serves, as "namespace/name", or
	// "name" for the Network of that name in any namespace. Empty means any.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=317
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Networks []string `json:"networks,omitempty"`
}

// Route is a route added for an interface.
type Route struct {
	// Dst is the destination in CIDR form.
	// +required
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="dst must be a CIDR"
	Dst string `json:"dst"`

	// GW is the next hop; empty means the pool's gateway.
	// +optional
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="gw must be an IP address"
	GW *string `json:"gw,omitempty"`
}

// DNS is the resolver configuration handed to a pod's interface.
type DNS struct {
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=39
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="nameservers must be IP addresses"
	Nameservers []string `json:"nameservers,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Domain string `json:"domain,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	Search []string `json:"search,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	Options []string `json:"options,omitempty"`
}

// IPPoolPhase summarises whether a pool can serve new reservations.
// +kubebuilder:validation:Enum=Ready;Exhausted;Disabled
type IPPoolPhase string

const (
	IPPoolReady     IPPoolPhase = "Ready"
	IPPoolExhausted IPPoolPhase = "Exhausted"
	IPPoolDisabled  IPPoolPhase = "Disabled"
)

// IPPoolStatus is recomputed by the pool controller from the pool's spec and
// its IPAllocations; nothing in it is authoritative.
type IPPoolStatus struct {
	// TotalIPCount is the number of addresses the pool can hand out.
	// +optional
	TotalIPCount int64 `json:"totalIPCount"`
	// AllocatedIPCount is the number of IPAllocations of the pool.
	// +optional
	AllocatedIPCount int64 `json:"allocatedIPCount"`
	// +optional
	Phase IPPoolPhase `json:"phase,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPPool is a subnet and the addresses of it that Berth hands out to pods.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ipp,categories=berth
// +kubebuilder:printcolumn:name="SUBNET",type=string,JSONPath=`.spec.subnet`
// +kubebuilder:printcolumn:name="ALLOCATED",type=integer,JSONPath=`.status.allocatedIPCount`
// +kubebuilder:printcolumn:name="TOTAL",type=integer,JSONPath=`.status.totalIPCount`
// +kubebuilder:printcolumn:name="DEFAULT",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="DISABLED",type=boolean,JSONPath=`.spec.disable`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 200",message="metadata.name of an IPPool must be at most 200 characters, so that IPAllocation names fit"
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec IPPoolSpec `json:"spec"`
	// +optional
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}
