// Package allocation chooses which VFs to give a container when the kubelet
// asks for a preference (GetPreferredAllocation).
//
// Two goals, in this order: keep the devices on one NUMA node (the one the
// devices the kubelet must include are on, else one that can hold the whole
// request), and within it spread the devices over as many PFs as possible,
// so a pod with two VFs survives one cable or one NIC failing, and one PF's
// bandwidth is not shared by every interface of a pod.
package allocation

import (
	"cmp"
	"fmt"
	"slices"
)

// Device is what the choice needs to know of a VF.
type Device struct {
	PF   string // the PF's PCI address
	NUMA int    // -1 when unknown
}

// Preferred returns size device IDs: every ID of mustInclude, then the best
// of available. IDs the plugin does not know (not in devices) are never
// chosen. It fails when available cannot make up size.
func Preferred(devices map[string]Device, available, mustInclude []string, size int) ([]string, error) {
	if size <= 0 {
		return nil, fmt.Errorf("allocation size %d: must be positive", size)
	}
	chosen := make([]string, 0, size)
	taken := map[string]bool{}
	perPF := map[string]int{}
	perNUMA := map[int]int{}
	for _, id := range mustInclude {
		if taken[id] {
			continue
		}
		taken[id] = true
		chosen = append(chosen, id)
		if d, ok := devices[id]; ok {
			perPF[d.PF]++
			perNUMA[d.NUMA]++
		}
	}
	if len(chosen) >= size {
		return chosen, nil
	}
	// Free devices grouped by NUMA node, then PF.
	free := map[int]map[string][]string{}
	for _, id := range available {
		d, ok := devices[id]
		if !ok || taken[id] {
			continue
		}
		taken[id] = true
		if free[d.NUMA] == nil {
			free[d.NUMA] = map[string][]string{}
		}
		free[d.NUMA][d.PF] = append(free[d.NUMA][d.PF], id)
	}
	need := size - len(chosen)
	for _, node := range nodeOrder(free, perNUMA, need) {
		picked := spread(free[node], perPF, need)
		chosen = append(chosen, picked...)
		need -= len(picked)
		if need == 0 {
			return chosen, nil
		}
	}
	return nil, fmt.Errorf("%d devices requested, only %d available", size, size-need)
}

// nodeOrder ranks NUMA nodes: the node already holding must-include devices
// first, then nodes that can hold the rest of the request alone, then the
// node with most free devices; the unknown node (-1) comes after known ones
// of equal rank, and the lower node number settles ties.
func nodeOrder(free map[int]map[string][]string, perNUMA map[int]int, need int) []int {
	count := map[int]int{}
	nodes := make([]int, 0, len(free))
	for n, pfs := range free {
		nodes = append(nodes, n)
		for _, ids := range pfs {
			count[n] += len(ids)
		}
	}
	fits := func(n int) int {
		if count[n] >= need {
			return 1
		}
		return 0
	}
	known := func(n int) int {
		if n >= 0 {
			return 1
		}
		return 0
	}
	slices.SortFunc(nodes, func(a, b int) int {
		return cmp.Or(
			cmp.Compare(perNUMA[b], perNUMA[a]),
			cmp.Compare(fits(b), fits(a)),
			cmp.Compare(count[b], count[a]),
			cmp.Compare(known(b), known(a)),
			cmp.Compare(a, b),
		)
	})
	return nodes
}

// spread takes up to need devices from pfs, each time from the PF that has
// given the container fewest devices so far (counting must-include ones),
// preferring the PF with most free devices left, then the lower address.
// Within a PF, devices go in ID order (lowest PCI address first).
func spread(pfs map[string][]string, perPF map[string]int, need int) []string {
	names := make([]string, 0, len(pfs))
	for pf, ids := range pfs {
		slices.Sort(ids)
		names = append(names, pf)
	}
	var picked []string
	for len(picked) < need {
		best := ""
		for _, pf := range names {
			if len(pfs[pf]) == 0 {
				continue
			}
			if best == "" || cmp.Or(
				cmp.Compare(perPF[pf], perPF[best]),
				cmp.Compare(len(pfs[best]), len(pfs[pf])),
				cmp.Compare(pf, best),
			) < 0 {
				best = pf
			}
		}
		if best == "" {
			break
		}
		picked = append(picked, pfs[best][0])
		pfs[best] = pfs[best][1:]
		perPF[best]++
	}
	return picked
}
