package podmutator

import (
	"testing"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/policies"
)

// FuzzHandle feeds arbitrary annotations to the handler: it must never
// panic, every patch must apply to the pod, and a refusal must leave no
// reservation behind.
func FuzzHandle(f *testing.F) {
	f.Add("storage", "", `{"interfaces":[]}`)
	f.Add(`[{"name":"storage","interface":"net1","cni-args":{"berth.io/assignment":1}}]`, `[{"name":"plain"}]`, "")
	f.Add("plain@eth0,storage", "storage", "x")
	f.Add(`[{"name":"fast"},{"name":"fast","ips":["10.9.0.7"]}]`, "", "")
	f.Fuzz(func(t *testing.T, networks, defaultNet, forged string) {
		ann := map[string]string{}
		for k, v := range map[string]string{nadv1.NetworksAnnotation: networks, nadv1.DefaultNetworkAnnotation: defaultNet, assignment.Annotation: forged} {
			if v != "" {
				ann[k] = v
			}
		}
		alloc := newFakeAllocator()
		dec := decision(policies.Attachment{Network: "default/storage", Interface: "net1", Policy: "p"},
			policies.Attachment{Network: "default/fast", Policy: "p"})
		h := newHandler(t, &fakeEvaluator{dec: dec}, alloc)
		req := request(podJSON(ann, ""))
		resp := h.Handle(t.Context(), req)
		if !resp.Allowed {
			if len(alloc.live) != 0 {
				t.Fatalf("refused (%s) with allocations held: %v", resp.Result.Message, alloc.live)
			}
			return
		}
		if len(resp.Patches) > 0 {
			checkPatchApplies(t, req, resp)
		}
	})
}
