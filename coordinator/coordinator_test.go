package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestReady(t *testing.T) {
	tests := []struct {
		name string
		c    *berthv1.Coordinator
		want string // "" = ready
	}{
		{"synced", &berthv1.Coordinator{Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorSynced}}, ""},
		{"not ready with reason", &berthv1.Coordinator{Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorNotReady, Reason: "podCIDRType calico: no pod CIDRs"}}, "podCIDRType calico: no pod CIDRs"},
		{"never examined", &berthv1.Coordinator{}, "its controller has not examined the cluster yet"},
		{"missing", nil, `there is no Coordinator "default"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Ready(tc.c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("not ready: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotReady) {
				t.Fatalf("error %v does not match ErrNotReady", err)
			}
			var nr *NotReadyError
			if !errors.As(err, &nr) || !strings.Contains(nr.Reason, tc.want) || !strings.HasPrefix(err.Error(), `Coordinator "default" is not ready`) {
				t.Errorf("error %q, want reason %q", err, tc.want)
			}
		})
	}
}

func TestCheckReady(t *testing.T) {
	s := runtime.NewScheme()
	if err := berthv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	empty := fake.NewClientBuilder().WithScheme(s).Build()
	if err := CheckReady(context.Background(), empty); !errors.Is(err, ErrNotReady) {
		t.Errorf("without a Coordinator: %v", err)
	}
	synced := fake.NewClientBuilder().WithScheme(s).WithObjects(&berthv1.Coordinator{
		ObjectMeta: metav1.ObjectMeta{Name: Name}, Status: berthv1.CoordinatorStatus{Phase: berthv1.CoordinatorSynced},
	}).Build()
	if err := CheckReady(context.Background(), synced); err != nil {
		t.Errorf("synced: %v", err)
	}
}
