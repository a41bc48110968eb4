package loader

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

// ConditionCompiled is the condition type mirroring status.phase.
const ConditionCompiled = "Compiled"

// maxMessage keeps a condition message under the API's limit of 32768.
const maxMessage = 32000

// StatusController writes status.phase Compiled or Error, with each compile
// error's line and column, for every AttachmentPolicy generation. It needs
// leader election: replicas would write the same status twice.
type StatusController struct {
	Client client.Client
}

// SetupWithManager registers the controller.
func (s *StatusController) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("attachmentpolicy-status").
		For(&berthv1.AttachmentPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(s)
}

// Reconcile compiles the policy's current generation and records the result.
func (s *StatusController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p berthv1.AttachmentPolicy
	if err := s.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	want := p.Status.DeepCopy()
	Compute(want, p.Spec.Rego, p.Generation)
	if statusEqual(&p.Status, want) {
		return reconcile.Result{}, nil
	}
	patch := client.MergeFrom(p.DeepCopy())
	p.Status = *want
	if err := s.Client.Status().Patch(ctx, &p, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("attachmentpolicy %q: writing status: %w", p.Name, err)
	}
	return reconcile.Result{}, nil
}

// Compute sets status from compiling rego for generation: phase, errors,
// observedGeneration and the Compiled condition.
func Compute(status *berthv1.AttachmentPolicyStatus, rego string, generation int64) {
	errs := policies.Validate(rego)
	status.ObservedGeneration = generation
	status.Errors = errs
	cond := metav1.Condition{Type: ConditionCompiled, ObservedGeneration: generation}
	if len(errs) == 0 {
		status.Phase = berthv1.PolicyCompiled
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "Compiled", "the policy compiles and is evaluated"
	} else {
		status.Phase = berthv1.PolicyFailed
		cond.Status, cond.Reason = metav1.ConditionFalse, "CompileError"
		cond.Message = "admissions fail while this policy is enabled and does not compile: " + policies.FormatErrors(errs)
		if len(cond.Message) > maxMessage {
			cond.Message = cond.Message[:maxMessage] + "..."
		}
	}
	meta.SetStatusCondition(&status.Conditions, cond)
}

func statusEqual(a, b *berthv1.AttachmentPolicyStatus) bool {
	if a.Phase != b.Phase || a.ObservedGeneration != b.ObservedGeneration || !slices.Equal(a.Errors, b.Errors) || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
			return false
		}
	}
	return true
}
