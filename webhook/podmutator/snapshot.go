package podmutator

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

// snapshot is the cluster state one admission decides on, read from the
// informer caches: the objects are shared with the cache and never modified.
type snapshot struct {
	namespace *corev1.Namespace
	// networks holds Networks and NetworkAttachmentDefinitions by
	// namespace/name; a Network wins over the NAD it generated.
	networks map[string]policies.NetworkSummary
	// networkObjs are the Networks by namespace/name.
	networkObjs map[string]*berthv1.Network
	pools       map[string]*berthv1.IPPool
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
		namespace:   ns,
		networks:    map[string]policies.NetworkSummary{},
		networkObjs: map[string]*berthv1.Network{},
		pools:       map[string]*berthv1.IPPool{},
		summaries:   map[string]policies.PoolSummary{},
	}
	// The listed objects belong to the cache: read-only from here on.
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := h.deps.Cache.List(ctx, &nads, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NetworkAttachmentDefinitions: %w", err)
	}
	for i := range nads.Items {
		nad := &nads.Items[i]
		s.networks[nad.Namespace+"/"+nad.Name] = policies.NetworkSummary{
			Namespace:    nad.Namespace,
			Name:         nad.Name,
			ResourceName: nad.Annotations[nadv1.ResourceNameAnnotation],
			Berth:        generatedByBerth(nad),
		}
	}
	var nets berthv1.NetworkList
	if err := h.deps.Cache.List(ctx, &nets, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Networks: %w", err)
	}
	for i := range nets.Items {
		n := &nets.Items[i]
		key := n.Namespace + "/" + n.Name
		s.networkObjs[key] = n
		sum := policies.NetworkSummary{Namespace: n.Namespace, Name: n.Name, CNIType: string(n.Spec.CNIType), Berth: true}
		// The generated NAD carries the resource name; the Network has it
		// before the controller has written the NAD.
		sum.ResourceName = s.networks[key].ResourceName
		if sum.ResourceName == "" && n.Spec.SRIOV != nil {
			sum.ResourceName = n.Spec.SRIOV.ResourceName
		}
		if n.Spec.IPPools != nil {
			sum.IPv4Pools = n.Spec.IPPools.IPv4
			sum.IPv6Pools = n.Spec.IPPools.IPv6
		}
		s.networks[key] = sum
	}
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

// generatedByBerth tells a NAD the Network controller owns.
func generatedByBerth(nad *nadv1.NetworkAttachmentDefinition) bool {
	for _, ref := range nad.OwnerReferences {
		if ref.Kind == "Network" && ref.APIVersion == berthv1.GroupVersion.String() {
			return true
		}
	}
	return false
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

// servesNetwork tells whether pool p may be used for network (namespace/name):
// spec.networks empty, or naming it as namespace/name or by bare name.
func servesNetwork(p *berthv1.IPPool, network string) bool {
	if len(p.Spec.Networks) == 0 {
		return true
	}
	_, name, _ := strings.Cut(network, "/")
	for _, n := range p.Spec.Networks {
		if n == network || n == name {
			return true
		}
	}
	return false
}

// defaultPools are the pools serving a network that names none: default,
// enabled, serving the network, selecting the pod and its namespace. Sorted
// by name so every replica tries them in the same order.
func (s *snapshot) defaultPools(network string) (v4, v6 []string) {
	for name, p := range s.pools {
		sum := s.summaries[name]
		if !p.Spec.Default || p.Spec.Disable || !servesNetwork(p, network) || !sum.MatchesNamespace || !sum.MatchesPod {
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
