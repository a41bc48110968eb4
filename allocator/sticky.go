package allocator

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StickyFinalizer is on every sticky IPAllocation: a sticky address
// outlives its pods, so nothing but the controller, once it has seen that
// the StatefulSet no longer wants the pod and no live pod holds the address,
// may remove the lock (a deletion by hand waits for it).
//
// IPAllocations carry no owner references: a cluster-scoped object cannot
// be owned by a namespaced one (the garbage collector refuses such a
// reference with an OwnerRefInvalidNamespace event and never collects
// through it), so releasing is the controller's job, with the TTL behind it.
const StickyFinalizer = "berth.io/sticky-release"

// StickyKey is the key that keeps an address with a StatefulSet pod across
// its recreation: namespace/statefulset/pod/interface. It is empty for a pod
// no StatefulSet controls.
func StickyKey(pod *corev1.Pod, iface string) string {
	sts := statefulSetOwner(pod.OwnerReferences)
	if sts == nil || pod.Name == "" {
		return ""
	}
	return pod.Namespace + "/" + sts.Name + "/" + pod.Name + "/" + iface
}

// statefulSetOwner returns the controller reference of kind StatefulSet.
func statefulSetOwner(refs []metav1.OwnerReference) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: refs})
	if ref == nil || ref.Kind != "StatefulSet" || !strings.HasPrefix(ref.APIVersion, appsv1.GroupName+"/") {
		return nil
	}
	return ref
}

// Sticky is a parsed sticky key.
type Sticky struct {
	Namespace, StatefulSet, Pod, Interface string
	// Ordinal is the pod's ordinal, the number after the last dash.
	Ordinal int
}

// ParseStickyKey parses a key made by StickyKey.
func ParseStickyKey(key string) (Sticky, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return Sticky{}, fmt.Errorf("sticky key %q: want namespace/statefulset/pod/interface", key)
	}
	s := Sticky{Namespace: parts[0], StatefulSet: parts[1], Pod: parts[2], Interface: parts[3]}
	ord, ok := strings.CutPrefix(s.Pod, s.StatefulSet+"-")
	n, err := strconv.Atoi(ord)
	if !ok || err != nil || n < 0 || strconv.Itoa(n) != ord {
		return Sticky{}, fmt.Errorf("sticky key %q: pod %q is not <statefulset>-<ordinal>", key, s.Pod)
	}
	s.Ordinal = n
	return s, nil
}

// Wants reports whether sts still wants the pod of this key: it exists, is
// not being deleted, and keeps the ordinal (spec.ordinals.start <= ordinal <
// start + replicas).
func (s Sticky) Wants(sts *appsv1.StatefulSet) bool {
	if sts == nil || sts.DeletionTimestamp != nil || sts.Name != s.StatefulSet || sts.Namespace != s.Namespace {
		return false
	}
	start, replicas := 0, 1
	if sts.Spec.Ordinals != nil {
		start = int(sts.Spec.Ordinals.Start)
	}
	if sts.Spec.Replicas != nil {
		replicas = int(*sts.Spec.Replicas)
	}
	return s.Ordinal >= start && s.Ordinal < start+replicas
}
