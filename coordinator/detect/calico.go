package detect

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CalicoIPPool is the kind of Calico's IP pools as its CRD stores them.
func CalicoIPPool() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "IPPool"}
}

// CalicoIPPoolCRD is the name of the CustomResourceDefinition of CalicoIPPool.
const CalicoIPPoolCRD = "ippools.crd.projectcalico.org"

// CalicoCIDRs returns the CIDRs of the Calico pools pods get addresses from,
// sorted by pool name so the result does not depend on list order, and the
// names of those pools. Disabled pools are skipped, and so are pools whose
// allowedUses leave out "Workload" (tunnel or load-balancer pools).
func CalicoCIDRs(pools []unstructured.Unstructured) (cidrs, names []string, err error) {
	sorted := slices.Clone(pools)
	slices.SortFunc(sorted, func(a, b unstructured.Unstructured) int {
		switch {
		case a.GetName() < b.GetName():
			return -1
		case a.GetName() > b.GetName():
			return 1
		}
		return 0
	})
	for i := range sorted {
		p := &sorted[i]
		if p.GetDeletionTimestamp() != nil {
			continue
		}
		disabled, _, err := unstructured.NestedBool(p.Object, "spec", "disabled")
		if err != nil {
			return nil, nil, fmt.Errorf("calico IPPool %q: spec.disabled: %w", p.GetName(), err)
		}
		if disabled {
			continue
		}
		uses, found, err := unstructured.NestedStringSlice(p.Object, "spec", "allowedUses")
		if err != nil {
			return nil, nil, fmt.Errorf("calico IPPool %q: spec.allowedUses: %w", p.GetName(), err)
		}
		if found && !slices.Contains(uses, "Workload") {
			continue
		}
		cidr, _, err := unstructured.NestedString(p.Object, "spec", "cidr")
		if err != nil {
			return nil, nil, fmt.Errorf("calico IPPool %q: spec.cidr: %w", p.GetName(), err)
		}
		list, err := ParseCIDRList(cidr)
		if err != nil || len(list) != 1 {
			return nil, nil, fmt.Errorf("calico IPPool %q: spec.cidr %q is not a CIDR", p.GetName(), cidr)
		}
		cidrs = union(cidrs, list...)
		names = append(names, p.GetName())
	}
	return cidrs, names, nil
}
