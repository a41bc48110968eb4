// Package v1alpha1 holds the berth.io/v1alpha1 API: IP pools, the per-address
// IPAllocation lock objects, Networks, AttachmentPolicies and the Coordinator.
//
// +kubebuilder:object:generate=true
// +groupName=berth.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "berth.io", Version: "v1alpha1"}

// AddToScheme registers the types of this package with s. It is a plain
// function rather than an init-time builder so that nothing is registered
// behind the caller's back.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&IPPool{}, &IPPoolList{},
		&IPAllocation{}, &IPAllocationList{},
		&Network{}, &NetworkList{},
		&AttachmentPolicy{}, &AttachmentPolicyList{},
		&Coordinator{}, &CoordinatorList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
