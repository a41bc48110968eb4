package podmutator

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/policies"
)

// TestReserveDenialCodes: the user's mistakes are 4xx with the allocator's
// message, a replica not ready is 503 (retried), anything else is 500.
func TestReserveDenialCodes(t *testing.T) {
	a := &attachment{iface: "net1", network: "default/storage"}
	addr := netip.MustParseAddr("10.6.212.150")
	tests := []struct {
		err  error
		code int32
	}{
		{&allocator.ExhaustedError{Pools: []string{"p"}, Total: 2, Allocated: 2}, 403},
		{&allocator.TakenError{Addr: addr, Pool: "p", Holder: "default/other"}, 409},
		{&allocator.NotInPoolError{Addr: addr, Pools: []string{"p"}}, 422},
		{fmt.Errorf("ippool %q: %w", "p", allocator.ErrPoolNotFound), 422},
		{fmt.Errorf("ippool %q: %w", "p", allocator.ErrPoolDisabled), 422},
		{fmt.Errorf("ippool %q: %w", "p", allocator.ErrPoolInvalid), 422},
		{fmt.Errorf("two addresses of one family: %w", allocator.ErrInvalidRequest), 422},
		{allocator.ErrNotReady, 503},
		{errors.New("connection refused"), 500},
	}
	for _, tt := range tests {
		resp := reserveDenial(`pod "default/web-*"`, a, tt.err)
		if resp.Allowed || resp.Result.Code != tt.code {
			t.Errorf("%v: allowed %v code %d, want denied with %d", tt.err, resp.Allowed, resp.Result.Code, tt.code)
		}
		if !strings.Contains(resp.Result.Message, "interface net1 (network default/storage)") || !strings.Contains(resp.Result.Message, tt.err.Error()) {
			t.Errorf("message %q does not name the interface and the cause", resp.Result.Message)
		}
	}
}

// TestPoliciesNotLoadedIs503: a replica whose policies are not loaded yet
// refuses with 503, which clients retry, not 500.
func TestPoliciesNotLoadedIs503(t *testing.T) {
	h := newHandler(t, &fakeEvaluator{err: fmt.Errorf("loading: %w", policies.ErrNotReady)}, newFakeAllocator())
	resp := h.Handle(t.Context(), request(podJSON(map[string]string{"k8s.v1.cni.cncf.io/networks": "storage"}, "")))
	if resp.Allowed || resp.Result.Code != 503 {
		t.Fatalf("allowed %v code %d (%s), want 503", resp.Allowed, resp.Result.Code, resp.Result.Message)
	}
}
