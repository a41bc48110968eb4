package policyvalidator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// The real compile function is policies.Validate, exercised end to end in
// tests/e2e; here a stand-in that fails on "bad" shows how errors are told.
func compile(source string) []berthv1.PolicyError {
	if strings.Contains(source, "bad") {
		return []berthv1.PolicyError{{Message: "rego_parse_error: unexpected ident", Line: 3, Column: 7}, {Message: "rego_type_error: undefined ref"}}
	}
	return nil
}

func format(errs []berthv1.PolicyError) string {
	var parts []string
	for _, e := range errs {
		if e.Line > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message))
		} else {
			parts = append(parts, e.Message)
		}
	}
	return strings.Join(parts, "; ")
}

func TestHandle(t *testing.T) {
	s := runtime.NewScheme()
	if err := berthv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	v := New(compile, format, s, nil)
	for _, tt := range []struct {
		rego string
		op   admissionv1.Operation
		msg  string
	}{
		{rego: "package berth.attachments", op: admissionv1.Create},
		{rego: "package berth.attachments\n\nbad", op: admissionv1.Update, msg: `attachmentpolicy "p": spec.rego: 3:7: rego_parse_error: unexpected ident; rego_type_error: undefined ref`},
		{rego: "bad", op: admissionv1.Delete},
	} {
		data, _ := json.Marshal(&berthv1.AttachmentPolicy{TypeMeta: metav1.TypeMeta{APIVersion: "berth.io/v1alpha1", Kind: "AttachmentPolicy"}, ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: berthv1.AttachmentPolicySpec{Rego: tt.rego}})
		resp := v.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: tt.op, Name: "p", Object: runtime.RawExtension{Raw: data}}})
		if tt.msg == "" {
			if !resp.Allowed {
				t.Errorf("%s %q denied: %s", tt.op, tt.rego, resp.Result.Message)
			}
			continue
		}
		if resp.Allowed || resp.Result.Code != 422 || resp.Result.Message != tt.msg {
			t.Errorf("%s %q: got allowed=%v %+v, want 422 %q", tt.op, tt.rego, resp.Allowed, resp.Result, tt.msg)
		}
	}
}
