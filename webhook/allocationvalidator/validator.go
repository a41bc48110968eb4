// Package allocationvalidator is the validating admission webhook of
// IPAllocation UPDATEs and DELETEs by anyone but Berth. An IPAllocation is
// the lock on an address: deleting one a pod still uses would let the next
// pod get the same address (invariant 1), and editing its spec would detach
// it from its pod. So a DELETE is refused while the allocation controller
// would keep the allocation (its pod lives, its reservation is young, its
// StatefulSet wants the pod back), and every change of spec is refused;
// deleting an allocation nothing holds, and editing labels or annotations,
// are allowed. The API server sends only other users' requests (a match
// condition leaves Berth's own out).
package allocationvalidator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/webhook/metrics"
)

// Name is the webhook's name in metrics.
const Name = "ipallocation-validate"

// Keeper says why an allocation must be kept ("" when nothing holds it);
// allocator/controllers.Keeper is the one the controllers decide with.
type Keeper interface {
	Why(ctx context.Context, alloc *berthv1.IPAllocation) (string, error)
}

// Validator checks IPAllocation UPDATEs and DELETEs.
type Validator struct {
	// ServiceAccount is Berth's own, as a username: always allowed.
	ServiceAccount string
	Keeper         Keeper
	Metrics        *metrics.Recorder
}

// Handle answers one request.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp := v.handle(ctx, req)
	result := metrics.ResultAllowed
	switch {
	case resp.Result != nil && resp.Result.Code >= http.StatusInternalServerError:
		result = metrics.ResultErrored
	case !resp.Allowed:
		result = metrics.ResultDenied
	}
	v.Metrics.Admission(Name, string(req.Operation), result, time.Since(start))
	return resp
}

func (v *Validator) handle(ctx context.Context, req admission.Request) admission.Response {
	if req.UserInfo.Username == v.ServiceAccount {
		return admission.Allowed("")
	}
	old := &berthv1.IPAllocation{}
	if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("ipallocation %q: decoding the stored object: %w", req.Name, err))
	}
	switch req.Operation {
	case admissionv1.Update:
		updated := &berthv1.IPAllocation{}
		if err := json.Unmarshal(req.Object.Raw, updated); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("ipallocation %q: decoding the object: %w", req.Name, err))
		}
		if equality.Semantic.DeepEqual(old.Spec, updated.Spec) {
			return admission.Allowed("")
		}
		return denied(fmt.Sprintf("ipallocation %q: spec: written by Berth only; it records which pod holds %s", req.Name, old.Spec.IP))
	case admissionv1.Delete:
		why, err := v.Keeper.Why(ctx, old)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("ipallocation %q: checking whether %s is in use: %w", req.Name, old.Spec.IP, err))
		}
		if why == "" {
			return admission.Allowed("")
		}
		return denied(fmt.Sprintf("ipallocation %q: %s of pool %s is %s; deleting it would let another pod get the same address. Delete the pod (or scale the StatefulSet down) and Berth releases it",
			req.Name, old.Spec.IP, old.Spec.Pool, why))
	}
	return admission.Allowed("")
}

func denied(msg string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
	}}}
}
