package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// AllocationPhase is where a reservation is in its life.
// +kubebuilder:validation:Enum=Reserved;Bound
type AllocationPhase string

const (
	// AllocationReserved: taken at admission; the pod may not be stored yet.
	AllocationReserved AllocationPhase = "Reserved"
	// AllocationBound: the controller has tied the reservation to a stored pod.
	AllocationBound AllocationPhase = "Bound"
)

// PodReference names the pod an address is reserved for. At admission a pod
// may have only a generateName and no UID; the controller fills in the rest.
type PodReference struct {
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=253
	GenerateName string `json:"generateName,omitempty"`
	// +optional
	UID types.UID `json:"uid,omitempty"`
}

// IPAllocationSpec records one reserved address. IPAllocation has no status
// subresource on purpose: the object is the lock, and binding it to the pod
// must stay one write (metadata and spec together) per reservation.
type IPAllocationSpec struct {
	// Pool is the IPPool the address belongs to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.pool is immutable"
	Pool string `json:"pool"`

	// IP is the reserved address, without prefix length.
	// +required
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self) && string(ip(self)) == self",message="spec.ip must be an IP address in canonical form"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.ip is immutable"
	IP string `json:"ip"`

	// Phase is Reserved until the controller binds the address to a stored pod.
	// +required
	Phase AllocationPhase `json:"phase"`

	// PodRef is the pod holding the address.
	// +optional
	PodRef *PodReference `json:"podRef,omitempty"`

	// AdmissionUID is the UID of the admission request that reserved the
	// address; it ties a reservation to its pod before the pod has a UID.
	// +optional
	AdmissionUID types.UID `json:"admissionUID,omitempty"`

	// Interface is the pod interface the address is for, e.g. net1.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Interface string `json:"interface,omitempty"`

	// Network is the Network (namespace/name) the interface attaches to.
	// +optional
	// +kubebuilder:validation:MaxLength=317
	Network string `json:"network,omitempty"`

	// Node is where the pod runs, once scheduled.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// StickyKey, when set, keeps the address when the pod is deleted: a new pod
	// with the same key (a StatefulSet pod of the same name, per interface)
	// gets it back. Released when the owner no longer wants that pod.
	// +optional
	// +kubebuilder:validation:MaxLength=600
	StickyKey string `json:"stickyKey,omitempty"`
}

// IPAllocation is one reserved address. Its name is AllocationName(pool, ip),
// "<pool>.<ip>" with the colons of an IPv6 address written as dashes, so
// creating it is the lock: two allocators cannot both create the same name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipa,categories=berth
// +kubebuilder:selectablefield:JSONPath=`.spec.pool`
// +kubebuilder:selectablefield:JSONPath=`.spec.phase`
// +kubebuilder:selectablefield:JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="POOL",type=string,JSONPath=`.spec.pool`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.spec.ip`
// +kubebuilder:printcolumn:name="POD",type=string,JSONPath=`.spec.podRef.name`
// +kubebuilder:printcolumn:name="INTERFACE",type=string,JSONPath=`.spec.interface`
// +kubebuilder:printcolumn:name="NODE",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.spec.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == (self.spec.ip.startsWith(':') && self.spec.ip.endsWith(':') ? self.spec.pool + '.0' + self.spec.ip.replace(':', '-') + '0' : self.spec.ip.startsWith(':') ? self.spec.pool + '.0' + self.spec.ip.replace(':', '-') : self.spec.ip.endsWith(':') ? self.spec.pool + '.' + self.spec.ip.replace(':', '-') + '0' : self.spec.pool + '.' + self.spec.ip.replace(':', '-'))",message="metadata.name must be spec.pool + \".\" + spec.ip (IPv6 colons as dashes, a leading or trailing \"::\" padded with 0): the name is the lock on the address"
type IPAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec IPAllocationSpec `json:"spec"`
}

// IPAllocationList is a list of IPAllocations.
//
// +kubebuilder:object:root=true
type IPAllocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAllocation `json:"items"`
}
