package podmutator

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/policies"
)

// snapshot is the cluster state one admission decides on, read from the
// informer caches: the objects are shared with the cache and never modified.
type snapshot struct {
	namespace *corev1.Namespace
	// networks holds what a pod may attach to by the namespace/name of its
	// NetworkAttachmentDefinition, the name Multus reads: every NAD, and
	// every Network under the name of the NAD it generates (indexNetworks).
	networks map[string]policies.NetworkSummary
	// networkObjs are the Networks, keyed like networks.
	networkObjs map[string]*berthv1.Network
	// chainsCoordinator says, for each NAD a Network generates or controls
	// whose config parses, whether that config runs berth-coordinator (the
	// config is what Multus runs). A Network's NAD not in it (not written
	// yet, or being rewritten) is judged by network.NeedsCoordinator.
	chainsCoordinator map[string]bool
	pools             map[string]*berthv1.IPPool
	// summaries are the pools as the policies see them, for this pod.
	summaries map[string]policies.PoolSummary
}

// readSnapshot lists what the policies and the pool resolution need.
func (h *Handler) readSnapshot(ctx context.Context, pod *corev1.Pod) (*snapshot, error) {
	ns, err := h.namespace(ctx, pod.Namespace)
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		namespace:         ns,
		networks:          map[string]policies.NetworkSummary{},
		chainsCoordinator: map[string]bool{},
		pools:             map[string]*berthv1.IPPool{},
		summaries:         map[string]policies.PoolSummary{},
	}
	// The listed objects belong to the cache: read-only from here on.
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := h.deps.Cache.List(ctx, &nads, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NetworkAttachmentDefinitions: %w", err)
	}
	var nets berthv1.NetworkList
	if err := h.deps.Cache.List(ctx, &nets, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Networks: %w", err)
	}
	s.indexNetworks(nads.Items, nets.Items)
	var pools berthv1.IPPoolList
	if err := h.deps.Cache.List(ctx, &pools, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing IPPools: %w", err)
	}
	for i := range pools.Items {
		p := &pools.Items[i]
		s.pools[p.Name] = p
		sum, err := h.summarize(p, ns, pod)
		if err != nil {
			return nil, err
		}
		s.summaries[p.Name] = sum
	}
	return s, nil
}

// namespace reads the pod's namespace from the cache and, when a namespace
// created a moment ago has not reached it, from the API server.
func (h *Handler) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	err := h.deps.Cache.Get(ctx, client.ObjectKey{Name: name}, ns)
	if apierrors.IsNotFound(err) && h.deps.APIReader != nil {
		err = h.deps.APIReader.Get(ctx, client.ObjectKey{Name: name}, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", name, err)
	}
	return ns, nil
}

// summarize describes pool p for the policies deciding about pod in ns.
func (h *Handler) summarize(p *berthv1.IPPool, ns *corev1.Namespace, pod *corev1.Pod) (policies.PoolSummary, error) {
	sum := policies.PoolSummary{
		Name:              p.Name,
		Subnet:            p.Spec.Subnet,
		Default:           p.Spec.Default,
		Disabled:          p.Spec.Disable,
		Networks:          p.Spec.Networks,
		Total:             p.Status.TotalIPCount,
		Free:              p.Status.TotalIPCount - p.Status.AllocatedIPCount,
		NodeBound:         nodeBound(p),
		NamespaceSelector: p.Spec.NamespaceSelector,
		PodSelector:       p.Spec.PodSelector,
		NodeSelector:      p.Spec.NodeSelector,
		NodeNames:         p.Spec.NodeNames,
	}
	if p.Spec.Gateway != nil {
		sum.Gateway = *p.Spec.Gateway
	}
	sum.Family = 4
	if prefix, err := netip.ParsePrefix(p.Spec.Subnet); err == nil && prefix.Addr().Is6() {
		sum.Family = 6
	}
	if h.deps.Usage != nil {
		if total, allocated, ok := h.deps.Usage.Usage(p.Name); ok {
			sum.Total, sum.Free = total, total-allocated
		}
	}
	if sum.Free < 0 {
		sum.Free = 0
	}
	var err error
	sum.MatchesNamespace, sum.MatchesPod, err = policies.PoolSelects(p, ns.Labels, pod.Labels)
	return sum, err
}

// selects applies a label selector; an absent one selects everything.
func selects(sel *metav1.LabelSelector, set map[string]string) (bool, error) {
	return policies.SelectorMatches(sel, set)
}

// nodeBound tells a pool that serves only some nodes. An empty (non-nil)
// node selector selects every node, like any empty label selector.
func nodeBound(p *berthv1.IPPool) bool {
	sel := p.Spec.NodeSelector
	selectorAll := sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0
	if selectorAll {
		return false
	}
	return sel != nil || len(p.Spec.NodeNames) > 0
}

// servesNetwork tells whether pool p may be used for attachment a: its
// spec.networks is empty, or names the network by any name it goes by (the
// NAD's, and the generating Network's when that is another name), as
// namespace/name or by bare name: network.Named, the rule the IPPool
// validator and the Network validator and controller follow too.
func servesNetwork(p *berthv1.IPPool, a *attachment) bool {
	return len(p.Spec.Networks) == 0 || network.Named(p.Spec.Networks, network.Keys(a.network, a.nw)...)
}

// defaultPools are the pools serving an attachment that names none: default,
// enabled, serving its network, selecting the pod and its namespace. Sorted
// by name so every replica tries them in the same order.
func (s *snapshot) defaultPools(a *attachment) (v4, v6 []string) {
	for name, p := range s.pools {
		sum := s.summaries[name]
		if !p.Spec.Default || p.Spec.Disable || !servesNetwork(p, a) || !sum.MatchesNamespace || !sum.MatchesPod {
			continue
		}
		if sum.Family == 6 {
			v6 = append(v6, name)
		} else {
			v4 = append(v4, name)
		}
	}
	sort.Strings(v4)
	sort.Strings(v6)
	return v4, v6
}
