package podvalidator

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const berthSA = "system:serviceaccount:berth-system:berth-controller"

func pod(ann map[string]string) runtime.RawExtension {
	data, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web-1", "namespace": "default", "annotations": ann}})
	return runtime.RawExtension{Raw: data}
}

func TestHandle(t *testing.T) {
	assigned := map[string]string{"berth.io/assignment": `{"interfaces":[]}`, "berth.io/policy": "p", "k8s.v1.cni.cncf.io/networks": `[{"name":"storage"}]`, "team": "a"}
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for key, val := range assigned {
			out[key] = val
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name        string
		op          admissionv1.Operation
		user        string
		subresource string
		old, new    map[string]string
		msg         string // empty: allowed
	}{
		{name: "other annotations may change", op: admissionv1.Update, old: assigned, new: with("team", "b")},
		{name: "Multus's network-status may be written", op: admissionv1.Update, subresource: "status", old: assigned, new: with("k8s.v1.cni.cncf.io/network-status", "[]")},
		{name: "changing the assignment is refused", op: admissionv1.Update, old: assigned, new: with("berth.io/assignment", `{"interfaces":[{"interface":"net1"}]}`),
			msg: `pod "default/web-1": metadata.annotations[berth.io/assignment]: set by Berth at creation and immutable; delete and recreate the pod to change its networks`},
		{name: "removing the assignment is refused", op: admissionv1.Update, old: assigned, new: with("berth.io/assignment", ""),
			msg: `pod "default/web-1": metadata.annotations[berth.io/assignment]: set by Berth at creation and immutable; delete and recreate the pod to change its networks`},
		{name: "adding a default network through pods/status is refused", op: admissionv1.Update, subresource: "status", old: assigned, new: with("v1.multus-cni.io/default-network", "storage"),
			msg: `pod "default/web-1": metadata.annotations[v1.multus-cni.io/default-network]: set by Berth at creation and immutable (through status); delete and recreate the pod to change its networks`},
		{name: "several changes are all named", op: admissionv1.Update, old: assigned, new: map[string]string{"team": "a"},
			msg: `pod "default/web-1": metadata.annotations[berth.io/assignment], metadata.annotations[berth.io/policy], metadata.annotations[k8s.v1.cni.cncf.io/networks]: set by Berth at creation and immutable; delete and recreate the pod to change its networks`},
		{name: "Berth's service account may change them", op: admissionv1.Update, user: berthSA, old: assigned, new: with("berth.io/assignment", "")},
		{name: "CREATE is the mutating webhook's business", op: admissionv1.Create, new: with("berth.io/assignment", "x")},
	}
	v := &Validator{ServiceAccount: berthSA}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := tt.user
			if user == "" {
				user = "alice"
			}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: tt.op, Namespace: "default", Name: "web-1", SubResource: tt.subresource,
				UserInfo: authenticationv1.UserInfo{Username: user}, Object: pod(tt.new),
			}}
			if tt.old != nil {
				req.OldObject = pod(tt.old)
			}
			resp := v.Handle(t.Context(), req)
			if tt.msg == "" {
				if !resp.Allowed {
					t.Fatalf("denied: %s", resp.Result.Message)
				}
				return
			}
			if resp.Allowed || resp.Result.Code != 403 || resp.Result.Message != tt.msg {
				t.Fatalf("got allowed=%v %+v\nwant 403 %q", resp.Allowed, resp.Result, tt.msg)
			}
		})
	}
}
