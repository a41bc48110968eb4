// Package podmutator is the mutating admission webhook for pod CREATE, the
// heart of Berth: it asks the attachment policies which networks a pod gets,
// reserves its addresses through the allocator and writes the decision into
// the pod (the enriched Multus annotations, berth.io/assignment, SR-IOV
// resource requests, node affinity for node-bound pools). All or nothing:
// when a step fails after a reservation, every reservation of the request is
// released before the denial is returned.
package podmutator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/coordinator"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/policies"
	"github.com/berth-io/berth/webhook/metrics"
)

// Name is the webhook's name in metrics and logs.
const Name = "pod-mutate"

// Dependencies are what the handler reads and calls, built by the caller.
type Dependencies struct {
	// Cache is the informer-backed reader of Namespaces, Nodes, Networks,
	// NetworkAttachmentDefinitions and IPPools.
	Cache client.Reader
	// APIReader reads around the cache: a namespace created a moment ago.
	APIReader client.Reader
	Policies  policies.Evaluator
	Allocator allocator.Interface
	// Usage gives live free counts of pools from the allocator's view; nil
	// (or a pool it does not know) falls back to the pools' status, which
	// the pool controller updates after the fact.
	Usage allocator.Usage
	// Scheme decodes pods.
	Scheme *runtime.Scheme
	// Metrics may be nil.
	Metrics *metrics.Recorder
	// ServiceAccount is Berth's own, as a username
	// (system:serviceaccount:<namespace>:<name>); its pods are left alone.
	ServiceAccount string
	// ExemptNamespaces are never mutated (kube-system, Berth's namespace);
	// the webhook configuration excludes them too, this is the backstop.
	ExemptNamespaces []string
	// Timeout bounds one admission, below the API server's webhook timeout
	// so that a slow step still leaves time to release reservations.
	Timeout time.Duration
}

// Handler is the admission.Handler of pod CREATE.
type Handler struct {
	deps    Dependencies
	decoder admission.Decoder
}

var _ admission.Handler = &Handler{}

// New builds the handler; Cache, Policies, Allocator and Scheme are required.
func New(deps Dependencies) (*Handler, error) {
	if deps.Cache == nil || deps.Policies == nil || deps.Allocator == nil || deps.Scheme == nil {
		return nil, errors.New("podmutator: Cache, Policies, Allocator and Scheme are required")
	}
	if deps.Timeout <= 0 {
		deps.Timeout = 8 * time.Second
	}
	return &Handler{deps: deps, decoder: admission.NewDecoder(deps.Scheme)}, nil
}

// Handle answers one admission request and records it.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp := h.handle(ctx, req)
	h.deps.Metrics.Admission(Name, string(req.Operation), result(resp), time.Since(start))
	return resp
}

func result(resp admission.Response) string {
	switch {
	case resp.Allowed && len(resp.Patches) > 0:
		return metrics.ResultPatched
	case resp.Allowed:
		return metrics.ResultAllowed
	case resp.Result != nil && resp.Result.Code >= 500:
		return metrics.ResultErrored
	default:
		return metrics.ResultDenied
	}
}

func (h *Handler) handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("only pod CREATE is mutated")
	}
	if req.UserInfo.Username == h.deps.ServiceAccount || slices.Contains(h.deps.ExemptNamespaces, req.Namespace) {
		return admission.Allowed("exempt")
	}
	ctx, cancel := context.WithTimeout(ctx, h.deps.Timeout)
	defer cancel()
	log := logf.FromContext(ctx).WithValues("namespace", req.Namespace, "pod", podName(req), "uid", req.UID)

	pod := &corev1.Pod{}
	if err := h.decoder.DecodeRaw(req.Object, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	pod.Namespace = req.Namespace
	ref := podRef(req)

	elems, err := nadv1.ParseNetworkSelection(pod.Annotations[nadv1.NetworksAnnotation], pod.Namespace)
	if err != nil {
		return deny(http.StatusUnprocessableEntity, "%s: %v", ref, err)
	}
	requestedDefault, err := cleanDefaultNetwork(pod)
	if err != nil {
		return deny(http.StatusUnprocessableEntity, "%s: %v", ref, err)
	}
	requested, err := policies.RequestedNetworksOf(pod)
	if err != nil {
		return deny(http.StatusUnprocessableEntity, "%s: %v", ref, err)
	}
	snap, err := h.readSnapshot(ctx, pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: %w", ref, err))
	}
	dec, err := h.evaluate(ctx, req, pod, snap, requested)
	if err != nil {
		code := int32(http.StatusInternalServerError)
		if errors.Is(err, policies.ErrNotReady) {
			// A replica that has not loaded its policies yet: the API
			// server's caller retries.
			code = http.StatusServiceUnavailable
		}
		return admission.Errored(code, fmt.Errorf("%s: evaluating attachment policies: %w", ref, err))
	}
	if len(dec.Denials) > 0 {
		msgs := make([]string, len(dec.Denials))
		for i, d := range dec.Denials {
			msgs[i] = fmt.Sprintf("[%s] %s", d.Policy, d.Message)
		}
		return deny(http.StatusForbidden, "%s: %s", ref, strings.Join(msgs, "; "))
	}
	var node *corev1.Node
	if name, _ := pinnedNode(pod); name != "" {
		node = &corev1.Node{}
		if err := h.deps.Cache.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			node = nil // a node not registered yet: only spec.nodeNames can match it
		}
	}
	p, err := buildPlan(pod, elems, dec, snap, node)
	if err != nil {
		var pe *planError
		if errors.As(err, &pe) {
			return deny(pe.code, "%s: %s", ref, pe.msg)
		}
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: %w", ref, err))
	}

	if resp := h.checkCoordinator(ctx, ref, p, snap, requested); resp != nil {
		return *resp
	}
	dryRun := req.DryRun != nil && *req.DryRun
	reserved, resp := h.reserve(ctx, req, pod, p, dryRun)
	if resp != nil {
		return *resp
	}
	patched, err := h.patch(req.Object.Raw, p, dec, reserved, snap, requestedDefault, dryRun)
	if err != nil {
		h.release(ctx, reserved)
		var pe *planError
		if errors.As(err, &pe) {
			return deny(pe.code, "%s: %s", ref, pe.msg)
		}
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: %w", ref, err))
	}
	out := admission.PatchResponseFromRaw(req.Object.Raw, patched)
	if !out.Allowed {
		h.release(ctx, reserved)
		return out
	}
	if dryRun && len(p.attachments) > 0 {
		out = out.WithWarnings("dry run: Berth evaluated the policies but reserved no addresses")
	}
	if len(p.attachments) > 0 {
		log.V(1).Info("admitted", "interfaces", len(p.attachments), "policies", dec.Policies)
	}
	return out
}

// checkCoordinator refuses a pod attaching to a Network whose pods need
// berth-coordinator while the Coordinator has not detected the cluster's
// CIDRs: the pod would start with routes that miss them. 503, as the
// condition is expected to pass. Every network the pod asks for counts, and
// every one a policy attaches: berth-coordinator is chained whatever the
// IPAM, so a Network Berth reserves nothing for (an IPAM of its own) needs
// the Coordinator as much. A NAD no Network is behind is not checked: its
// berth-coordinator, if any, routes the CIDRs its author wrote, which the
// Coordinator's readiness does not change.
func (h *Handler) checkCoordinator(ctx context.Context, ref string, p *plan, snap *snapshot, requested []policies.RequestedNetwork) *admission.Response {
	var keys []string
	for _, r := range requested {
		keys = append(keys, r.Network)
	}
	for _, a := range p.attachments {
		keys = append(keys, a.network)
	}
	var needs []string
	var coord *berthv1.Coordinator
	read := false
	readCoordinator := func() *admission.Response {
		if read {
			return nil
		}
		var err error
		if coord, err = coordinator.Get(ctx, h.deps.Cache); err != nil {
			resp := admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: %w", ref, err))
			return &resp
		}
		read = true
		return nil
	}
	for _, key := range keys {
		nw := snap.networkObjs[key]
		if nw == nil || slices.Contains(needs, key) {
			continue
		}
		chains, written := snap.chainsCoordinator[key]
		if !written {
			// The NAD is not written yet, or is being rewritten: it will
			// be rendered from the Network.
			if resp := readCoordinator(); resp != nil {
				return resp
			}
			chains = network.NeedsCoordinator(nw, coord)
		}
		if chains {
			needs = append(needs, key)
		}
	}
	if len(needs) == 0 {
		return nil
	}
	if resp := readCoordinator(); resp != nil {
		return resp
	}
	if err := coordinator.Ready(coord); err != nil {
		resp := deny(http.StatusServiceUnavailable, "%s: networks %v route through berth-coordinator: %v", ref, needs, err)
		return &resp
	}
	return nil
}

// evaluate runs the policies and records how long they took.
func (h *Handler) evaluate(ctx context.Context, req admission.Request, pod *corev1.Pod, snap *snapshot, requested []policies.RequestedNetwork) (*policies.Decision, error) {
	in := &policies.Input{
		Operation: string(req.Operation),
		Pod:       pod,
		Namespace: policies.Namespace{Name: snap.namespace.Name, Labels: snap.namespace.Labels, Annotations: snap.namespace.Annotations},
		UserInfo:  req.UserInfo,
		Networks:  snap.networks,
		Pools:     snap.summaries,

		RequestedNetworks: requested,
	}
	start := time.Now()
	dec, err := h.deps.Policies.Evaluate(ctx, in)
	outcome := "error"
	switch {
	case err != nil:
	case dec == nil:
		err = errors.New("the policy engine returned no decision")
	case len(dec.Denials) > 0:
		outcome = "deny"
	case len(dec.Attachments) > 0:
		outcome = "attach"
	default:
		outcome = "none"
	}
	h.deps.Metrics.Evaluation(outcome, time.Since(start))
	return dec, err
}

// reserve reserves the addresses of every attachment, in order. On the
// first failure it releases what it reserved and returns the denial.
func (h *Handler) reserve(ctx context.Context, req admission.Request, pod *corev1.Pod, p *plan, dryRun bool) ([][]allocator.Reservation, *admission.Response) {
	reserved := make([][]allocator.Reservation, len(p.attachments))
	if dryRun {
		return reserved, nil
	}
	for i, a := range p.attachments {
		if len(a.v4)+len(a.v6) == 0 {
			continue
		}
		res, err := h.deps.Allocator.Reserve(ctx, allocator.Request{
			Pod: pod, AdmissionUID: req.UID, Interface: a.iface, Network: a.network,
			IPv4Pools: a.v4, IPv6Pools: a.v6, StaticIPs: a.static,
		})
		if err != nil {
			h.release(ctx, reserved)
			h.deps.Metrics.ReserveFailed(reserveReason(err))
			resp := reserveDenial(podRef(req), a, err)
			return nil, &resp
		}
		for _, r := range res {
			h.deps.Metrics.Reserved(r.Pool)
		}
		reserved[i] = res
	}
	return reserved, nil
}

// release gives back every reservation of the request. It runs after the
// request's context may have ended, so it has its own deadline; what it
// cannot release the allocator's collector reclaims after its grace period.
func (h *Handler) release(ctx context.Context, reserved [][]allocator.Reservation) {
	var all []allocator.Reservation
	var pools []string
	for _, res := range reserved {
		all = append(all, res...)
		for _, r := range res {
			pools = append(pools, r.Pool)
		}
	}
	if len(all) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.deps.Allocator.Release(ctx, all); err != nil {
		logf.FromContext(ctx).Error(err, "releasing the reservations of a refused pod; the allocator collects them after its grace period", "count", len(all))
		return
	}
	h.deps.Metrics.RolledBack(pools)
}

// patch edits the raw pod: annotations, resources, affinity.
func (h *Handler) patch(raw []byte, p *plan, dec *policies.Decision, reserved [][]allocator.Reservation, snap *snapshot, requestedDefault string, dryRun bool) ([]byte, error) {
	pod, err := decodeRaw(raw)
	if err != nil {
		return nil, err
	}
	itfs := make([]assignment.Interface, len(p.attachments))
	for i, a := range p.attachments {
		itfs[i] = interfaceAssignment(a, reserved[i])
	}
	networks, defaultNet, changed, err := p.annotationValues(itfs, !dryRun, requestedDefault)
	if err != nil {
		return nil, err
	}
	if changed {
		pod.setAnnotation(nadv1.NetworksAnnotation, networks)
	}
	pod.setAnnotation(nadv1.DefaultNetworkAnnotation, defaultNet)
	// Outputs are the webhook's alone: whatever the author wrote is replaced
	// or removed.
	pod.setAnnotation(assignment.Annotation, "")
	pod.setAnnotation(assignment.PolicyAnnotation, "")
	if len(p.attachments) > 0 {
		pod.setAnnotation(assignment.PolicyAnnotation, strings.Join(dec.Policies, ","))
		if !dryRun {
			a := &assignment.Assignment{Interfaces: itfs}
			if err := a.Validate(); err != nil {
				return nil, fmt.Errorf("the assignment built is invalid: %w", err)
			}
			value, err := a.Marshal()
			if err != nil {
				return nil, err
			}
			pod.setAnnotation(assignment.Annotation, value)
		}
	}
	want := map[corev1.ResourceName]int64{}
	for _, a := range p.attachments {
		if a.resourceName != "" {
			want[corev1.ResourceName(a.resourceName)]++
		}
	}
	if err := pod.addResources(want); err != nil {
		return nil, err
	}
	if p.node == "" && !dryRun {
		var bound []*berthv1.IPPool
		seen := map[string]bool{}
		for _, res := range reserved {
			for _, r := range res {
				pool := snap.pools[r.Pool]
				if pool == nil || seen[r.Pool] || !nodeBound(pool) {
					continue
				}
				seen[r.Pool] = true
				bound = append(bound, pool)
			}
		}
		if err := pod.requireNodes(dedupeBySelector(bound)); err != nil {
			return nil, err
		}
	}
	return pod.encode()
}

// dedupeBySelector drops pools binding the same nodes as an earlier one
// (the IPv4 and IPv6 pools of a rack), so their terms are not multiplied.
func dedupeBySelector(pools []*berthv1.IPPool) []*berthv1.IPPool {
	var out []*berthv1.IPPool
	seen := map[string]bool{}
	for _, p := range pools {
		key := fmt.Sprintf("%v|%v", p.Spec.NodeSelector, p.Spec.NodeNames)
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// cleanDefaultNetwork returns the default-network annotation as it should
// stay when no attachment claims eth0: unchanged, or rewritten without a
// berth.io/assignment its author put in cni-args.
func cleanDefaultNetwork(pod *corev1.Pod) (string, error) {
	value, ok := pod.Annotations[nadv1.DefaultNetworkAnnotation]
	if !ok || !strings.HasPrefix(strings.TrimSpace(value), "[") {
		return value, nil
	}
	elems, err := nadv1.ParseNetworkSelection(value, pod.Namespace)
	if err != nil {
		return "", fmt.Errorf("annotation %s: %w", nadv1.DefaultNetworkAnnotation, err)
	}
	forged := false
	for i := range elems {
		var f bool
		elems[i], f = stripForged(elems[i])
		forged = forged || f
	}
	if !forged {
		return value, nil
	}
	return marshalElems(elems)
}

// reserveReason is the metrics label of an allocator error.
func reserveReason(err error) string {
	for _, c := range []struct {
		target error
		reason string
	}{
		{allocator.ErrExhausted, "exhausted"}, {allocator.ErrTaken, "taken"}, {allocator.ErrNotInPool, "not-in-pool"},
		{allocator.ErrPoolNotFound, "pool-not-found"}, {allocator.ErrPoolDisabled, "pool-disabled"}, {allocator.ErrNotReady, "not-ready"},
	} {
		if errors.Is(err, c.target) {
			return c.reason
		}
	}
	return "error"
}

// reserveDenial turns an allocator error into the answer: the pool ran dry
// is 403 (like an exceeded quota), a taken address 409, a bad request 422, an
// allocator still starting 503 (the caller retries), anything else 500.
func reserveDenial(ref string, a *attachment, err error) admission.Response {
	code := int32(http.StatusInternalServerError)
	switch {
	case errors.Is(err, allocator.ErrExhausted):
		code = http.StatusForbidden
	case errors.Is(err, allocator.ErrTaken):
		code = http.StatusConflict
	case errors.Is(err, allocator.ErrNotInPool), errors.Is(err, allocator.ErrPoolNotFound), errors.Is(err, allocator.ErrPoolDisabled),
		errors.Is(err, allocator.ErrPoolInvalid), errors.Is(err, allocator.ErrInvalidRequest):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, allocator.ErrNotReady):
		code = http.StatusServiceUnavailable
	}
	return deny(code, "%s: reserving addresses for interface %s (network %s): %v", ref, a.iface, a.network, err)
}

// deny refuses with a code and a message; 403 and 409 keep their reasons
// so clients (the ReplicaSet controller) see what kind of refusal it was.
func deny(code int32, format string, args ...any) admission.Response {
	reason := metav1.StatusReasonInvalid
	switch code {
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusConflict:
		reason = metav1.StatusReasonConflict
	case http.StatusServiceUnavailable:
		reason = metav1.StatusReasonServiceUnavailable
	case http.StatusInternalServerError:
		reason = metav1.StatusReasonInternalError
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)},
	}}
}

// podName is the pod's name, or its generateName followed by "*" when the
// API server has not named it yet.
func podName(req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	meta := &metav1.PartialObjectMetadata{}
	if err := jsonUnmarshal(req.Object.Raw, meta); err == nil {
		if meta.Name != "" {
			return meta.Name
		}
		return meta.GenerateName + "*"
	}
	return "*"
}

// podRef names the pod in messages: pod "namespace/name".
func podRef(req admission.Request) string {
	return fmt.Sprintf("pod %q", req.Namespace+"/"+podName(req))
}
