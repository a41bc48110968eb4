package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CoordinatorMode says how berth-coordinator treats a pod's interfaces.
// +kubebuilder:validation:Enum=auto;underlay;overlay;disabled
type CoordinatorMode string

const (
	// CoordinatorAuto chooses underlay when the Berth NIC is eth0, else overlay.
	CoordinatorAuto CoordinatorMode = "auto"
	// CoordinatorUnderlay: the underlay NIC is eth0; a veth to the host lets
	// the pod reach its node and ClusterIPs.
	CoordinatorUnderlay CoordinatorMode = "underlay"
	// CoordinatorOverlay: eth0 comes from the cluster's default CNI and the
	// underlay NICs are extra interfaces.
	CoordinatorOverlay CoordinatorMode = "overlay"
	// CoordinatorDisabled leaves the routes as the main plugin made them.
	CoordinatorDisabled CoordinatorMode = "disabled"
)

// PodCIDRType says where the cluster's pod CIDRs are read from.
// +kubebuilder:validation:Enum=auto;cluster;calico;cilium;none
type PodCIDRType string

const (
	PodCIDRAuto    PodCIDRType = "auto"
	PodCIDRCluster PodCIDRType = "cluster"
	PodCIDRCalico  PodCIDRType = "calico"
	PodCIDRCilium  PodCIDRType = "cilium"
	PodCIDRNone    PodCIDRType = "none"
)

// CoordinatorSettings are the knobs of berth-coordinator that a Network may
// override. Pointers distinguish "not set here" from a zero value.
type CoordinatorSettings struct {
	// +optional
	Mode *CoordinatorMode `json:"mode,omitempty"`

	// HijackCIDRs are routed via the host (underlay) or eth0 (overlay), in
	// addition to the cluster's pod and service CIDRs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="hijackCIDR entries must be CIDRs"
	HijackCIDRs []string `json:"hijackCIDR,omitempty"`

	// PodDefaultRouteNIC names the pod interface that carries the default
	// route when args.cni (the pod's berth.io/default-route-nic, its
	// assignment's defaultRoute) does not say; empty means eth0, whatever
	// the mode.
	// The rule is the kernel's for link names, as berth-coordinator checks
	// it: printable ASCII without '/', ':' or spaces, not "." or "..".
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self == '' || (self != '.' && self != '..' && self.matches('^[!-.0-9;-~]+$'))",message="podDefaultRouteNIC must be an interface name: printable ASCII without '/', ':' or spaces, not '.' or '..'"
	PodDefaultRouteNIC *string `json:"podDefaultRouteNIC,omitempty"`

	// PodMACPrefix, e.g. "0a:1b", makes the interface MAC the prefix followed
	// by the low bytes of its IPv4 address. The MAC must stay unicast, so the
	// multicast bit (0x01 of the first byte) must be clear; the locally
	// administered bit (0x02) may be either.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9a-fA-F]{2})(:[0-9a-fA-F]{2})?$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^.[13579bdfBDF]')",message="podMACPrefix must have the multicast bit (0x01 of the first byte) clear: pod MACs are unicast"
	PodMACPrefix *string `json:"podMACPrefix,omitempty"`

	// HostRuleTable is the routing table on the host for routes to pods in
	// underlay mode (default 500). Not 253, 254 or 255: the kernel's default,
	// main and local tables hold routes that are not Berth's to remove.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:XValidation:rule="self < 253 || self > 255",message="hostRuleTable must be 1 to 4294967295 and not 253, 254 or 255 (the kernel's default, main and local tables)"
	HostRuleTable *int64 `json:"hostRuleTable,omitempty"`

	// PodRPFilter and HostRPFilter set net.ipv4.conf.*.rp_filter (0, 1, 2);
	// -1 leaves it alone.
	// +optional
	// +kubebuilder:validation:Minimum=-1
	// +kubebuilder:validation:Maximum=2
	PodRPFilter *int32 `json:"podRPFilter,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=-1
	// +kubebuilder:validation:Maximum=2
	HostRPFilter *int32 `json:"hostRPFilter,omitempty"`

	// TxQueueLen of the pod interface; 0 leaves the default.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TxQueueLen *int32 `json:"txQueueLen,omitempty"`

	// DetectGateway checks with ARP/NDP that the gateway answers before ADD
	// succeeds.
	// +optional
	DetectGateway *bool `json:"detectGateway,omitempty"`

	// DetectIPConflict checks with ARP/NDP that no other host on the segment
	// uses the address before ADD succeeds.
	// +optional
	DetectIPConflict *bool `json:"detectIPConflict,omitempty"`

	// VethLinkAddress is the IPv4 address of the host side of the underlay
	// veth, the pod's next hop to its node (default 169.254.200.1); the pod
	// side takes the next address, which must be unicast. IPv6 needs none:
	// the next hop is fe80::1.
	// +optional
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="vethLinkAddress must be an IPv4 address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !(self in ['223.255.255.255', '255.255.255.254', '255.255.255.255'] || (cidr('224.0.0.0/4').containsIP(self) && self != '239.255.255.255'))",message="vethLinkAddress must leave a unicast address after it, which the pod side of the veth takes"
	VethLinkAddress *string `json:"vethLinkAddress,omitempty"`
}

// CoordinatorSpec holds the cluster-wide coordinator defaults.
type CoordinatorSpec struct {
	// +optional
	CoordinatorSettings `json:",inline"`

	// PodCIDRType says where to read the cluster's pod CIDRs from.
	// +optional
	// +kubebuilder:default=auto
	PodCIDRType PodCIDRType `json:"podCIDRType,omitempty"`

	// PodCIDRs and ServiceCIDRs are added to what is detected; with
	// podCIDRType none they are all there is.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="podCIDRs entries must be CIDRs"
	PodCIDRs []string `json:"podCIDRs,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="serviceCIDRs entries must be CIDRs"
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
}

// CoordinatorPhase tells whether the cluster CIDRs are known.
// +kubebuilder:validation:Enum=Synced;NotReady
type CoordinatorPhase string

const (
	CoordinatorSynced   CoordinatorPhase = "Synced"
	CoordinatorNotReady CoordinatorPhase = "NotReady"
)

// CoordinatorStatus reports the CIDRs detected from the cluster.
type CoordinatorStatus struct {
	// +optional
	Phase CoordinatorPhase `json:"phase,omitempty"`
	// Reason says why the phase is NotReady, or where the CIDRs came from.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	// +listType=atomic
	PodCIDRs []string `json:"podCIDRs,omitempty"`
	// +optional
	// +listType=atomic
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Coordinator holds the cluster-wide defaults of berth-coordinator and the
// cluster CIDRs detected for it. There is one, named "default".
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=coord,categories=berth
// +kubebuilder:printcolumn:name="MODE",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="PODCIDRTYPE",type=string,JSONPath=`.spec.podCIDRType`
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="there is one Coordinator and its metadata.name is \"default\""
type Coordinator struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec CoordinatorSpec `json:"spec,omitempty"`
	// +optional
	Status CoordinatorStatus `json:"status,omitempty"`
}

// CoordinatorList is a list of Coordinators.
//
// +kubebuilder:object:root=true
type CoordinatorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Coordinator `json:"items"`
}
