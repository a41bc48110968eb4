package show

import (
	"bytes"
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestNADs(t *testing.T) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{berthv1.AddToScheme, nadv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "fast"}, Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV},
			Status: berthv1.NetworkStatus{Phase: berthv1.NetworkReady}},
		&nadv1.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "fast", Annotations: map[string]string{nadv1.ResourceNameAnnotation: "berth.io/vf"}},
			Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"fast","plugins":[{"type":"sriov"}]}`},
		},
		&berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "storage"}, Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan},
			Status: berthv1.NetworkStatus{Phase: berthv1.NetworkFailed, Message: "NAD exists"}},
	).Build()
	var out bytes.Buffer
	if err := NADs(context.Background(), c, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	want := `Network a/storage (macvlan): phase Failed
  no NetworkAttachmentDefinition a/storage yet: NAD exists

Network b/fast (sriov): phase Ready
  NetworkAttachmentDefinition b/fast, k8s.v1.cni.cncf.io/resourceName: berth.io/vf
{
  "cniVersion": "1.0.0",
  "name": "fast",
  "plugins": [
    {
      "type": "sriov"
    }
  ]
}

`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Index(got, "a/storage") > strings.Index(got, "b/fast") {
		t.Error("not sorted by namespace")
	}
}
