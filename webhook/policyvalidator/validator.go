// Package policyvalidator is the validating admission webhook of
// AttachmentPolicies: a policy that does not compile, or does not keep the
// module contract, is refused with the line and column of each error, so a
// broken policy never reaches the engine (which would otherwise fail every
// admission it takes part in).
package policyvalidator

import (
	"context"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/webhook/metrics"
)

// Name is the webhook's name in metrics.
const Name = "attachmentpolicy-validate"

// CompileFunc compiles Rego source and returns its errors (policies.Validate).
type CompileFunc func(source string) []berthv1.PolicyError

// FormatFunc renders errors (policies.FormatErrors).
type FormatFunc func([]berthv1.PolicyError) string

// Validator checks AttachmentPolicy CREATE and UPDATE.
type Validator struct {
	Compile CompileFunc
	Format  FormatFunc
	Decoder admission.Decoder
	Metrics *metrics.Recorder
}

// New builds the validator.
func New(compile CompileFunc, format FormatFunc, scheme *runtime.Scheme, m *metrics.Recorder) *Validator {
	return &Validator{Compile: compile, Format: format, Decoder: admission.NewDecoder(scheme), Metrics: m}
}

// Handle answers one request.
func (v *Validator) Handle(_ context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp := v.handle(req)
	result := metrics.ResultAllowed
	if !resp.Allowed {
		result = metrics.ResultDenied
	}
	v.Metrics.Admission(Name, string(req.Operation), result, time.Since(start))
	return resp
}

func (v *Validator) handle(req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	policy := &berthv1.AttachmentPolicy{}
	if err := v.Decoder.DecodeRaw(req.Object, policy); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the AttachmentPolicy: %w", err))
	}
	errs := v.Compile(policy.Spec.Rego)
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("attachmentpolicy %q: spec.rego: %s", policy.Name, v.Format(errs)),
	}}}
}
