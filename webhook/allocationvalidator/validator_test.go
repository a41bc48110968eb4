package allocationvalidator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/webhook/metrics"
)

type keeper struct {
	why string
	err error
}

func (k keeper) Why(context.Context, *berthv1.IPAllocation) (string, error) { return k.why, k.err }

const berthSA = "system:serviceaccount:berth-system:berth-controller"

func raw(t *testing.T, a *berthv1.IPAllocation) runtime.RawExtension {
	t.Helper()
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: data}
}

func TestDecisions(t *testing.T) {
	base := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: "lan.10.0.0.5"}, Spec: berthv1.IPAllocationSpec{
		Pool: "lan", IP: "10.0.0.5", Phase: berthv1.AllocationBound, PodRef: &berthv1.PodReference{Namespace: "a", Name: "p", UID: "u1"}, Node: "n1",
	}}
	labelled := base.DeepCopy()
	labelled.Labels = map[string]string{"audit": "yes"}
	moved := base.DeepCopy()
	moved.Spec.Node = "n2"
	rebound := base.DeepCopy()
	rebound.Spec.PodRef.UID = "u2"

	for _, tt := range []struct {
		name    string
		op      admissionv1.Operation
		user    string
		updated *berthv1.IPAllocation
		keeper  keeper
		allowed bool
		code    int32
		message string
	}{
		{name: "delete of what nothing holds", op: admissionv1.Delete, user: "admin", allowed: true},
		{name: "delete of what a pod uses", op: admissionv1.Delete, user: "admin", keeper: keeper{why: "in use by pod a/p"}, code: http.StatusForbidden,
			message: `ipallocation "lan.10.0.0.5": 10.0.0.5 of pool lan is in use by pod a/p; deleting it would let another pod get the same address. Delete the pod (or scale the StatefulSet down) and Berth releases it`},
		{name: "Berth's own release", op: admissionv1.Delete, user: berthSA, keeper: keeper{why: "in use by pod a/p"}, allowed: true},
		{name: "the check fails: refused", op: admissionv1.Delete, user: "admin", keeper: keeper{err: errors.New("etcd timeout")}, code: http.StatusInternalServerError,
			message: `ipallocation "lan.10.0.0.5": checking whether 10.0.0.5 is in use: etcd timeout`},
		{name: "labels change", op: admissionv1.Update, user: "admin", updated: labelled, allowed: true},
		{name: "node changes", op: admissionv1.Update, user: "admin", updated: moved, code: http.StatusForbidden,
			message: `ipallocation "lan.10.0.0.5": spec: written by Berth only; it records which pod holds 10.0.0.5`},
		{name: "pod changes", op: admissionv1.Update, user: "admin", updated: rebound, code: http.StatusForbidden, message: "spec: written by Berth only"},
		{name: "Berth binds", op: admissionv1.Update, user: berthSA, updated: moved, allowed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := metrics.New(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			v := &Validator{ServiceAccount: berthSA, Keeper: tt.keeper, Metrics: rec}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Name: base.Name, Operation: tt.op, UserInfo: authenticationv1.UserInfo{Username: tt.user}, OldObject: raw(t, base),
			}}
			if tt.updated != nil {
				req.Object = raw(t, tt.updated)
			}
			resp := v.Handle(context.Background(), req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			if tt.allowed {
				return
			}
			if resp.Result.Code != tt.code || !strings.Contains(resp.Result.Message, tt.message) {
				t.Errorf("refusal %d %q, want %d containing %q", resp.Result.Code, resp.Result.Message, tt.code, tt.message)
			}
		})
	}
}

func TestUndecodableObjectIsABadRequest(t *testing.T) {
	rec, _ := metrics.New(prometheus.NewRegistry())
	v := &Validator{ServiceAccount: berthSA, Keeper: keeper{}, Metrics: rec}
	resp := v.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Name: "x", Operation: admissionv1.Delete, UserInfo: authenticationv1.UserInfo{Username: "admin"}, OldObject: runtime.RawExtension{Raw: []byte(`{"spec":`)},
	}})
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, `ipallocation "x": decoding the stored object`) {
		t.Errorf("got %+v", resp.Result)
	}
}
