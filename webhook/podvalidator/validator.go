// Package podvalidator is the validating admission webhook of pod UPDATEs:
// the addresses of a pod are decided once, at CREATE, and the annotations
// carrying them are the webhook's alone (DESIGN.md invariant 5). An UPDATE
// that changes berth.io/assignment, berth.io/policy, the Multus networks
// annotation or the default-network annotation is refused for everyone but
// Berth's own service account; through the pods/status subresource too,
// which can write annotations.
package podvalidator

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/webhook/metrics"
)

// Name is the webhook's name in metrics.
const Name = "pod-validate"

// Protected are the annotations only Berth may change after CREATE.
var Protected = []string{assignment.Annotation, assignment.PolicyAnnotation, nadv1.NetworksAnnotation, nadv1.DefaultNetworkAnnotation}

// Validator checks pod UPDATEs.
type Validator struct {
	// ServiceAccount is Berth's own, as a username.
	ServiceAccount string
	Metrics        *metrics.Recorder
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
	if req.Operation != admissionv1.Update || req.UserInfo.Username == v.ServiceAccount {
		return admission.Allowed("")
	}
	oldAnn, err := annotations(req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the stored pod: %w", err))
	}
	newAnn, err := annotations(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	var changed []string
	for _, key := range Protected {
		o, hadOld := oldAnn[key]
		n, hasNew := newAnn[key]
		if o != n || hadOld != hasNew {
			changed = append(changed, key)
		}
	}
	if len(changed) == 0 {
		return admission.Allowed("")
	}
	sort.Strings(changed)
	for i, key := range changed {
		changed[i] = "metadata.annotations[" + key + "]"
	}
	sub := ""
	if req.SubResource != "" {
		sub = " (through " + req.SubResource + ")"
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: fmt.Sprintf("pod %q: %s: set by Berth at creation and immutable%s; delete and recreate the pod to change its networks",
			req.Namespace+"/"+req.Name, strings.Join(changed, ", "), sub),
	}}}
}

// annotations decodes only the annotations of a pod.
func annotations(raw []byte) (map[string]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	meta := &metav1.PartialObjectMetadata{}
	if err := jsonUnmarshal(raw, meta); err != nil {
		return nil, err
	}
	return meta.Annotations, nil
}

// IsProtected tells whether key is an annotation only Berth may change.
func IsProtected(key string) bool { return slices.Contains(Protected, key) }
