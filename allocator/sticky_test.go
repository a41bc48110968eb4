package allocator

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestStickyKey(t *testing.T) {
	owner := func(apiVersion, kind string, controller bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "web", UID: "u", Controller: ptr.To(controller)}}
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"StatefulSet pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0", OwnerReferences: owner("apps/v1", "StatefulSet", true)}}, "db/web/web-0/net1"},
		{"not the controller", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0", OwnerReferences: owner("apps/v1", "StatefulSet", false)}}, ""},
		{"ReplicaSet pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0", OwnerReferences: owner("apps/v1", "ReplicaSet", true)}}, ""},
		{"a StatefulSet of another group", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0", OwnerReferences: owner("apps.kruise.io/v1beta1", "StatefulSet", true)}}, ""},
		{"no name yet", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", GenerateName: "web-", OwnerReferences: owner("apps/v1", "StatefulSet", true)}}, ""},
		{"bare pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0"}}, ""},
	}
	for _, tt := range tests {
		if got := StickyKey(&tt.pod, "net1"); got != tt.want {
			t.Errorf("%s: StickyKey = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseStickyKeyAndWants(t *testing.T) {
	sts := func(replicas int32, start int32, deleting bool) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)}}
		if start > 0 {
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: start}
		}
		if deleting {
			s.DeletionTimestamp = &metav1.Time{}
		}
		return s
	}
	tests := []struct {
		key     string
		sts     *appsv1.StatefulSet
		wants   bool
		wantErr string
	}{
		{key: "db/web/web-0/net1", sts: sts(1, 0, false), wants: true},
		{key: "db/web/web-1/net1", sts: sts(1, 0, false), wants: false}, // scaled below the ordinal
		{key: "db/web/web-2/net1", sts: sts(3, 0, false), wants: true},
		{key: "db/web/web-2/net1", sts: sts(2, 3, false), wants: false}, // ordinals start at 3
		{key: "db/web/web-4/net1", sts: sts(2, 3, false), wants: true},
		{key: "db/web/web-0/net1", sts: sts(1, 0, true), wants: false},        // being deleted
		{key: "db/web/web-0/net1", sts: nil, wants: false},                    // gone
		{key: "db/web-a/web-a-10/net2", sts: sts(11, 0, false), wants: false}, // another StatefulSet
		{key: "db/web/web-0", wantErr: "want namespace/statefulset/pod/interface"},
		{key: "db/web/web-x/net1", wantErr: `pod "web-x" is not <statefulset>-<ordinal>`},
		{key: "db/web/web-01/net1", wantErr: "is not <statefulset>-<ordinal>"},
		{key: "db/web/other-0/net1", wantErr: "is not <statefulset>-<ordinal>"},
		{key: "db//web-0/net1", wantErr: "want namespace/statefulset/pod/interface"},
	}
	for _, tt := range tests {
		s, err := ParseStickyKey(tt.key)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseStickyKey(%q) error = %v, want %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseStickyKey(%q): %v", tt.key, err)
			continue
		}
		if got := s.Wants(tt.sts); got != tt.wants {
			t.Errorf("%q Wants = %v, want %v", tt.key, got, tt.wants)
		}
	}
}

func FuzzParseStickyKey(f *testing.F) {
	for _, s := range []string{"db/web/web-0/net1", "a/b/b-12/eth0", "a/b/c/d", "////", "a/b/b--1/x", "a/b-1/b-1-1/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		s, err := ParseStickyKey(key)
		if err != nil {
			return
		}
		if s.Ordinal < 0 || s.Namespace+"/"+s.StatefulSet+"/"+s.Pod+"/"+s.Interface != key || !strings.HasPrefix(s.Pod, s.StatefulSet+"-") {
			t.Fatalf("ParseStickyKey(%q) = %+v", key, s)
		}
	})
}
