package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AttachmentPolicySpec holds a Rego module that decides which networks and
// pools a pod gets. DESIGN.md ("Policies") gives its input and output.
type AttachmentPolicySpec struct {
	// Rego is the policy module source.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="spec.rego must not be empty"
	Rego string `json:"rego"`

	// Priority orders policies: lower values are evaluated first, and for an
	// interface decided by two policies the lower value wins. Unset is 100.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Priority int32 `json:"priority,omitempty"`

	// Enabled takes the policy in or out of evaluation without deleting it.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
}

// PolicyPhase is the result of compiling a policy.
// +kubebuilder:validation:Enum=Compiled;Error
type PolicyPhase string

const (
	PolicyCompiled PolicyPhase = "Compiled"
	PolicyFailed   PolicyPhase = "Error"
)

// PolicyError is one compile error, located in spec.rego.
type PolicyError struct {
	Message string `json:"message"`
	// +optional
	Line int32 `json:"line,omitempty"`
	// +optional
	Column int32 `json:"column,omitempty"`
}

// AttachmentPolicyStatus reports whether the policy compiled.
type AttachmentPolicyStatus struct {
	// +optional
	Phase PolicyPhase `json:"phase,omitempty"`
	// +optional
	// +listType=atomic
	Errors []PolicyError `json:"errors,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AttachmentPolicy is a Rego policy deciding pod attachments at admission.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=atp,categories=berth
// +kubebuilder:printcolumn:name="PRIORITY",type=integer,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="ENABLED",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type AttachmentPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AttachmentPolicySpec `json:"spec"`
	// +optional
	Status AttachmentPolicyStatus `json:"status,omitempty"`
}

// AttachmentPolicyList is a list of AttachmentPolicies.
//
// +kubebuilder:object:root=true
type AttachmentPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AttachmentPolicy `json:"items"`
}
