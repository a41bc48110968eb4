package policies

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// SelectorMatches applies a label selector with Kubernetes' semantics. An
// absent (nil) selector matches everything, and so does an empty one.
func SelectorMatches(sel *metav1.LabelSelector, set map[string]string) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(set)), nil
}

// PoolSelects computes PoolSummary.MatchesNamespace and MatchesPod: whether
// pool's namespace and pod selectors select a pod with podLabels in a
// namespace with namespaceLabels. The error names the pool and the field.
func PoolSelects(pool *berthv1.IPPool, namespaceLabels, podLabels map[string]string) (matchesNamespace, matchesPod bool, err error) {
	if matchesNamespace, err = SelectorMatches(pool.Spec.NamespaceSelector, namespaceLabels); err != nil {
		return false, false, fmt.Errorf("ippool %q: spec.namespaceSelector: %w", pool.Name, err)
	}
	if matchesPod, err = SelectorMatches(pool.Spec.PodSelector, podLabels); err != nil {
		return false, false, fmt.Errorf("ippool %q: spec.podSelector: %w", pool.Name, err)
	}
	return matchesNamespace, matchesPod, nil
}
