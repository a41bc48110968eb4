package allocation

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Two NUMA nodes: node 0 has PFs A (a0-a3) and B (b0-b3), node 1 has PFs
// C (c0-c3) and D (d0-d1). X has no NUMA information.
func devices() map[string]Device {
	d := map[string]Device{}
	add := func(pf string, numa, n int) {
		for i := range n {
			d[fmt.Sprintf("%s%d", strings.ToLower(pf), i)] = Device{PF: pf, NUMA: numa}
		}
	}
	add("A", 0, 4)
	add("B", 0, 4)
	add("C", 1, 4)
	add("D", 1, 2)
	add("X", -1, 2)
	return d
}

func ids(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func TestPreferred(t *testing.T) {
	all := "a0 a1 a2 a3 b0 b1 b2 b3 c0 c1 c2 c3 d0 d1 x0 x1"
	for _, tc := range []struct {
		name      string
		available string
		must      string
		size      int
		want      string
	}{
		{"one device: the fullest node, the fullest PF", all, "", 1, "a0"},
		{"two devices spread over two PFs of one node", all, "", 2, "a0 b0"},
		{"four devices alternate PFs", all, "", 4, "a0 b0 a1 b1"},
		{"must-include device pulls the node and counts for its PF", all, "c2", 2, "c2 d0"},
		{"then back to the PF of the must-include device", all, "c2", 3, "c2 d0 c0"},
		{"must-include alone is enough", all, "b1 a3", 2, "b1 a3"},
		{"a node that fits beats a bigger share elsewhere", "a0 c0 c1 c2 d0", "", 3, "c0 d0 c1"},
		{"spill to the next node only when one node cannot hold it", "a0 a1 c0", "", 3, "a0 a1 c0"},
		{"PF with more free devices first when counts tie", "a0 b0 b1 b2", "", 2, "b0 a0"},
		{"unknown NUMA after a known node of equal standing", "x0 d1", "", 1, "d1"},
		{"a node that fits, even unknown, beats splitting", "x0 x1 d1", "", 2, "x0 x1"},
		{"unknown device IDs are never chosen", "a0 zz", "", 1, "a0"},
		{"duplicates in the request are ignored", "a0 a0 b0", "a0", 2, "a0 b0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Preferred(devices(), ids(tc.available), ids(tc.must), tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ids(tc.want)) {
				t.Errorf("Preferred = %v, want %v", got, ids(tc.want))
			}
		})
	}
}

func TestPreferredErrors(t *testing.T) {
	if _, err := Preferred(devices(), ids("a0 b0"), nil, 3); err == nil || err.Error() != "3 devices requested, only 2 available" {
		t.Errorf("too few devices: %v", err)
	}
	if _, err := Preferred(devices(), ids("a0"), nil, 0); err == nil {
		t.Error("size 0 accepted")
	}
}

func BenchmarkPreferred(b *testing.B) {
	d := map[string]Device{}
	var avail []string
	for pf := range 8 {
		for vf := range 64 {
			id := fmt.Sprintf("0000:%02x:%02x.%d", 0x80+pf, vf/8, vf%8)
			d[id] = Device{PF: fmt.Sprintf("pf%d", pf), NUMA: pf % 2}
			avail = append(avail, id)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preferred(d, avail, nil, 4); err != nil {
			b.Fatal(err)
		}
	}
}
