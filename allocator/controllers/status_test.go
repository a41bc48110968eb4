package controllers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestComputeStatus(t *testing.T) {
	allocs := func(ips ...string) []berthv1.IPAllocation {
		out := make([]berthv1.IPAllocation, len(ips))
		for i, ip := range ips {
			out[i].Spec.IP = ip
		}
		return out
	}
	tests := []struct {
		name      string
		spec      berthv1.IPPoolSpec
		allocs    []berthv1.IPAllocation
		total     int64
		allocated int64
		phase     berthv1.IPPoolPhase
		reason    string
		message   string
	}{
		{"ready", berthv1.IPPoolSpec{Subnet: "10.0.0.0/29"}, allocs("10.0.0.1"), 6, 1, berthv1.IPPoolReady, "Available", "1 of 6 addresses allocated"},
		{"exhausted", berthv1.IPPoolSpec{Subnet: "10.0.0.0/30"}, allocs("10.0.0.1", "10.0.0.2"), 2, 2, berthv1.IPPoolExhausted, "Exhausted", "2 of 2 addresses allocated"},
		{"an allocation outside the ranges counts as an object, not as used", berthv1.IPPoolSpec{Subnet: "10.0.0.0/30", ExcludeIPs: []string{"10.0.0.2"}}, allocs("10.0.0.1", "10.0.0.2"), 1, 2, berthv1.IPPoolExhausted, "Exhausted", "1 of 1 addresses allocated"},
		{"disabled", berthv1.IPPoolSpec{Subnet: "10.0.0.0/29", Disable: true}, nil, 6, 0, berthv1.IPPoolDisabled, "Disabled", "spec.disable is set; 0 of 6 addresses allocated"},
		{"invalid spec", berthv1.IPPoolSpec{Subnet: "10.0.0.0/29", IPs: []string{"10.0.0.9-10.0.0.1"}}, nil, 0, 0, "", "InvalidSpec", `spec.ips[0]: "10.0.0.9-10.0.0.1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 3}, Spec: tt.spec}
			st := computeStatus(pool, tt.allocs)
			ready := meta.FindStatusCondition(st.Conditions, ConditionReady)
			if st.TotalIPCount != tt.total || st.AllocatedIPCount != tt.allocated || st.Phase != tt.phase || st.ObservedGeneration != 3 ||
				ready == nil || ready.Reason != tt.reason || !strings.HasPrefix(ready.Message, tt.message) {
				t.Fatalf("status %+v, Ready %+v", st, ready)
			}
			if (ready.Status == metav1.ConditionTrue) != (tt.phase == berthv1.IPPoolReady) {
				t.Fatalf("Ready is %s in phase %s", ready.Status, st.Phase)
			}
		})
	}
}
