// Package v1 holds the few k8s.cni.cncf.io/v1 types Berth needs from Multus:
// NetworkAttachmentDefinition and the pod network selection elements, with
// the parser of the k8s.v1.cni.cncf.io/networks annotation. They follow the
// Network Plumbing Working Group's de-facto standard; Berth keeps its own copy
// because the upstream client module is not available to it.
//
// +kubebuilder:object:generate=true
// +groupName=k8s.cni.cncf.io
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is k8s.cni.cncf.io/v1.
var GroupVersion = schema.GroupVersion{Group: "k8s.cni.cncf.io", Version: "v1"}

// AddToScheme registers NetworkAttachmentDefinition with s.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &NetworkAttachmentDefinition{}, &NetworkAttachmentDefinitionList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
