// Package poolvalidator is the validating admission webhook of IPPools: it
// refuses what the CRD's own validation cannot see because it spans objects.
// A pool whose addresses overlap another pool serving the same network would
// let two pods hold one address (two IPAllocation names lock the same IP);
// a pool shrunk or excluded below addresses in use, or deleted while in use,
// would strand the pods holding them.
package poolvalidator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/allocator/ranges"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/webhook/metrics"
)

// Name is the webhook's name in metrics.
const Name = "ippool-validate"

// maxNamed bounds the addresses and pods a denial lists.
const maxNamed = 5

// Validator checks IPPool CREATE, UPDATE and DELETE.
type Validator struct {
	// Cache reads the other IPPools, and the Networks and
	// NetworkAttachmentDefinitions that say which names one network goes by
	// (the informer cache is enough: two pools created in the same instant
	// are the one race it cannot see).
	Cache client.Reader
	// Allocations reads IPAllocations by spec.pool, uncached: a reservation
	// made a moment ago must count.
	Allocations client.Reader
	Decoder     admission.Decoder
	Metrics     *metrics.Recorder
}

// New builds the validator.
func New(cache, allocations client.Reader, scheme *runtime.Scheme, m *metrics.Recorder) *Validator {
	return &Validator{Cache: cache, Allocations: allocations, Decoder: admission.NewDecoder(scheme), Metrics: m}
}

// Handle answers one request.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp := v.handle(ctx, req)
	result := metrics.ResultAllowed
	if !resp.Allowed {
		result = metrics.ResultDenied
		if resp.Result != nil && resp.Result.Code >= 500 {
			result = metrics.ResultErrored
		}
	}
	v.Metrics.Admission(Name, string(req.Operation), result, time.Since(start))
	return resp
}

func (v *Validator) handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Delete:
		return v.checkDelete(ctx, req.Name)
	case admissionv1.Create, admissionv1.Update:
	default:
		return admission.Allowed("")
	}
	pool := &berthv1.IPPool{}
	if err := v.Decoder.DecodeRaw(req.Object, pool); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the IPPool: %w", err))
	}
	mine, err := handedOut(&pool.Spec)
	if err != nil {
		return invalid("ippool %q: %v", pool.Name, err)
	}
	// The allocator's compile is the authority on what a pool hands out;
	// what it refuses the allocator could not serve.
	compiled, err := ranges.Compile(&pool.Spec)
	if err != nil {
		return invalid("ippool %q: %v", pool.Name, err)
	}
	if resp := v.checkOverlap(ctx, pool, mine); resp != nil {
		return *resp
	}
	if req.Operation == admissionv1.Update {
		if resp := v.checkInUse(ctx, pool, compiled); resp != nil {
			return *resp
		}
	}
	return admission.Allowed("")
}

// checkOverlap refuses a pool handing out an address another pool of the
// same family and network also hands out.
func (v *Validator) checkOverlap(ctx context.Context, pool *berthv1.IPPool, mine []span) *admission.Response {
	var others berthv1.IPPoolList
	if err := v.Cache.List(ctx, &others, client.UnsafeDisableDeepCopy); err != nil {
		resp := admission.Errored(http.StatusInternalServerError, fmt.Errorf("ippool %q: listing IPPools to check for overlaps: %w", pool.Name, err))
		return &resp
	}
	known, err := v.networkNames(ctx)
	if err != nil {
		resp := admission.Errored(http.StatusInternalServerError, fmt.Errorf("ippool %q: %w", pool.Name, err))
		return &resp
	}
	sort.Slice(others.Items, func(i, j int) bool { return others.Items[i].Name < others.Items[j].Name })
	for i := range others.Items {
		other := &others.Items[i]
		if other.Name == pool.Name {
			continue
		}
		via, shared := sharedNetwork(pool.Spec.Networks, other.Spec.Networks, known)
		if !shared {
			continue
		}
		theirs, err := handedOut(&other.Spec)
		if err != nil {
			continue // a pool stored before this check existed; it serves nothing
		}
		networks := describeNetworks(pool.Spec.Networks) + " and " + describeNetworks(other.Spec.Networks) + via
		if gw := other.Spec.Gateway; gw != nil && contains(mine, *gw) {
			resp := invalid("ippool %q: spec.ips: address %s is the gateway of ippool %q, which serves the same networks (%s)",
				pool.Name, *gw, other.Name, networks)
			return &resp
		}
		if gw := pool.Spec.Gateway; gw != nil && contains(theirs, *gw) {
			resp := invalid("ippool %q: spec.gateway: %s is handed out by ippool %q, which serves the same networks (%s)",
				pool.Name, *gw, other.Name, networks)
			return &resp
		}
		if common, ok := overlap(mine, theirs); ok {
			resp := invalid("ippool %q: spec.ips: addresses %s are also handed out by ippool %q, which serves the same networks (%s); two pools must not share addresses",
				pool.Name, common, other.Name, networks)
			return &resp
		}
	}
	return nil
}

// networkNames are the networks that go by more than one name: a Network
// whose NAD (the name pods use) is named otherwise, by berth.io/nad-name or
// as an old NAD it still controls. The pod webhook serves such a network
// from a pool naming any of them (network.NADNetworks, network.Keys), so
// two pools naming it differently share it. In NAD name order, so that a
// denial names the same one every time.
func (v *Validator) networkNames(ctx context.Context) ([][]string, error) {
	var nets berthv1.NetworkList
	if err := v.Cache.List(ctx, &nets, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Networks to learn the names of their NetworkAttachmentDefinitions: %w", err)
	}
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := v.Cache.List(ctx, &nads, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NetworkAttachmentDefinitions to learn which Networks they belong to: %w", err)
	}
	var out [][]string
	for nad, nw := range network.NADNetworks(nets.Items, nads.Items) {
		if keys := network.Keys(nad, nw); len(keys) > 1 {
			out = append(out, keys)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// sharedNetwork tells whether two spec.networks lists may serve one network,
// by the rule the pod webhook applies (network.Named): empty serves every
// network; an entry names a network as namespace/name or, bare, in any
// namespace. known are the networks that go by several names (a Network
// and its NAD, networkNames): when the lists meet only through one of
// those, via says which, for the denial.
func sharedNetwork(a, b []string, known [][]string) (via string, shared bool) {
	if len(a) == 0 || len(b) == 0 {
		return "", true
	}
	// A network no object describes yet, or a NAD of its own, goes by the
	// one name the entries give it.
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return "", true
			}
		}
	}
	for _, e := range slices.Concat(a, b) {
		if strings.Contains(e, "/") && network.Named(a, e) && network.Named(b, e) {
			return "", true
		}
	}
	for _, keys := range known {
		if network.Named(a, keys...) && network.Named(b, keys...) {
			return fmt.Sprintf(": both name Network %s, whose NetworkAttachmentDefinition is %s", keys[1], keys[0]), true
		}
	}
	return "", false
}

func describeNetworks(n []string) string {
	if len(n) == 0 {
		return "every network"
	}
	return "[" + strings.Join(n, " ") + "]"
}

// checkInUse refuses an update leaving out addresses that are allocated.
func (v *Validator) checkInUse(ctx context.Context, pool *berthv1.IPPool, compiled *ranges.Pool) *admission.Response {
	allocs, err := v.allocations(ctx, pool.Name)
	if err != nil {
		resp := admission.Errored(http.StatusInternalServerError, fmt.Errorf("ippool %q: %w", pool.Name, err))
		return &resp
	}
	var stranded []string
	for i := range allocs {
		addr, err := netip.ParseAddr(allocs[i].Spec.IP)
		if err != nil || compiled.Contains(addr) {
			continue
		}
		stranded = append(stranded, fmt.Sprintf("%s (%s)", addr, holder(&allocs[i])))
	}
	if len(stranded) == 0 {
		return nil
	}
	resp := invalid("ippool %q: spec: the new ips, excludeIPs and gateway leave out %d addresses in use: %s; release them first",
		pool.Name, len(stranded), named(stranded))
	return &resp
}

// checkDelete refuses deleting a pool with addresses in use, with the
// allocator's own check (the pool controller's finalizer gives the same
// answer to a deletion that got past the webhook).
func (v *Validator) checkDelete(ctx context.Context, name string) admission.Response {
	err := allocator.CheckPoolDeletion(ctx, v.Allocations, name)
	switch {
	case err == nil:
		return admission.Allowed("")
	case errors.Is(err, allocator.ErrPoolInUse):
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: conflict(err.Error())}}
	default:
		return admission.Errored(http.StatusInternalServerError, err)
	}
}

func (v *Validator) allocations(ctx context.Context, pool string) ([]berthv1.IPAllocation, error) {
	var list berthv1.IPAllocationList
	if err := v.Allocations.List(ctx, &list, client.MatchingFields{allocator.PoolField: pool}); err != nil {
		return nil, fmt.Errorf("listing the IPAllocations of the pool: %w", err)
	}
	return list.Items, nil
}

// holder names who holds an allocation: the pod, or the allocation itself
// while it is only reserved for a pod without a name yet.
func holder(a *berthv1.IPAllocation) string {
	if ref := a.Spec.PodRef; ref != nil {
		if ref.Name != "" {
			return "pod " + ref.Namespace + "/" + ref.Name
		}
		return "pod " + ref.Namespace + "/" + ref.GenerateName + "*"
	}
	return "ipallocation " + a.Name
}

func named(list []string) string {
	if len(list) <= maxNamed {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:maxNamed], ", "), len(list)-maxNamed)
}
