package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotation keys of the Network Plumbing Working Group specification.
const (
	// NetworksAnnotation on a pod lists the attachments it asks for.
	NetworksAnnotation = "k8s.v1.cni.cncf.io/networks"
	// NetworkStatusAnnotation is written by Multus with what was attached.
	NetworkStatusAnnotation = "k8s.v1.cni.cncf.io/network-status"
	// ResourceNameAnnotation on a NetworkAttachmentDefinition names the device
	// plugin resource the attachment needs (SR-IOV VFs).
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
	// DefaultNetworkAnnotation on a pod replaces the cluster default network.
	DefaultNetworkAnnotation = "v1.multus-cni.io/default-network"
)

// NetworkAttachmentDefinitionSpec holds the CNI configuration as JSON.
type NetworkAttachmentDefinitionSpec struct {
	Config string `json:"config,omitempty"`
}

// NetworkAttachmentDefinition is Multus's description of one attachment.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=network-attachment-definitions,shortName=net-attach-def,scope=Namespaced
type NetworkAttachmentDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NetworkAttachmentDefinitionSpec `json:"spec,omitempty"`
}

// NetworkAttachmentDefinitionList is a list of NetworkAttachmentDefinitions.
//
// +kubebuilder:object:root=true
type NetworkAttachmentDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkAttachmentDefinition `json:"items"`
}
