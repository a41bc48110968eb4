package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-io/berth/api/assignment"
)

func TestTrimPodKeepsWhatTheControllersRead(t *testing.T) {
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
			OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "web"}},
			Annotations:     map[string]string{assignment.Annotation: `{"interfaces":[]}`, "big": "x"}},
		Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Message: "m"},
	}
	out, err := TrimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.Name != "p" || got.UID != "u" || got.ResourceVersion != "7" || got.DeletionTimestamp == nil || len(got.OwnerReferences) != 1 ||
		got.Spec.NodeName != "node-1" || got.Status.Phase != corev1.PodRunning || got.Annotations[assignment.Annotation] == "" {
		t.Fatalf("lost a field the controllers read: %+v", got)
	}
	if len(got.Spec.Containers) != 0 || got.Annotations["big"] != "" || got.Status.Message != "" {
		t.Fatalf("kept what nobody reads: %+v", got)
	}
	if other, _ := TrimPod("not a pod"); other != "not a pod" {
		t.Fatal("TrimPod changed something that is not a pod")
	}
}
