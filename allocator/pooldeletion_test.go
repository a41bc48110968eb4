package allocator

import (
	"errors"
	"fmt"
	"testing"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestPoolInUseNamesCountAndPods(t *testing.T) {
	alloc := func(ns, name, generateName, sticky string) berthv1.IPAllocation {
		return berthv1.IPAllocation{Spec: berthv1.IPAllocationSpec{StickyKey: sticky, PodRef: &berthv1.PodReference{Namespace: ns, Name: name, GenerateName: generateName}}}
	}
	many := []berthv1.IPAllocation{}
	for i := 0; i < 8; i++ {
		many = append(many, alloc("ns", fmt.Sprintf("p%d", i), "", ""))
	}
	tests := []struct {
		name  string
		items []berthv1.IPAllocation
		want  string
	}{
		{"none", nil, ""},
		{"two pods, one dual-stack", []berthv1.IPAllocation{alloc("b", "y", "", ""), alloc("a", "x", "", ""), alloc("a", "x", "", "")},
			`ippool "p" still has 3 allocated address(es), held by a/x, b/y: delete those pods (or scale their StatefulSets down) first`},
		{"reserved for a generated name, and sticky", []berthv1.IPAllocation{alloc("a", "", "web-", ""), alloc("db", "web-0", "", "db/web/web-0/net1")},
			`ippool "p" still has 2 allocated address(es), held by a/web-*, db/web-0 (1 kept for StatefulSet pods): delete those pods (or scale their StatefulSets down) first`},
		{"more pods than named", many,
			`ippool "p" still has 8 allocated address(es), held by ns/p0, ns/p1, ns/p2, ns/p3, ns/p4 and 3 more pod(s): delete those pods (or scale their StatefulSets down) first`},
	}
	for _, tt := range tests {
		err := PoolInUse("p", tt.items)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrPoolInUse) {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
}
