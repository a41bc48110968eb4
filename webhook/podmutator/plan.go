package podmutator

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/policies"
)

// defaultInterface is the pod's first interface: an attachment on it
// replaces the cluster default network (v1.multus-cni.io/default-network).
const defaultInterface = "eth0"

// attachment is one pod interface of the admission, resolved: its name is
// final and its pools are the candidates handed to the allocator.
type attachment struct {
	policy  string
	network string // namespace/name of the NetworkAttachmentDefinition
	// nw is the Network generating that NAD, nil for a NAD of its own.
	nw *berthv1.Network
	// berth: the NAD's plugins take their addresses from berth-ipam, so
	// Berth reserves them; any other attachment is passed to Multus as it
	// came, with no reservation and no cni-args.
	berth        bool
	iface        string
	v4, v6       []string
	static       []netip.Addr
	mac          string
	defaultRoute bool
	resourceName string
	// elem is the index of the requested selection element this attachment
	// fulfils, -1 when a policy added it.
	elem int
}

// plan is what the admission will do, decided before anything is reserved.
type plan struct {
	attachments []*attachment
	// elems are the requested selection elements of the networks annotation.
	elems []nadv1.NetworkSelectionElement
	// node is the node the pod is already bound to, if any, and why.
	node, nodeSource string
	// namespace is the pod's, for messages.
	namespace string
}

// planError is a refusal with its HTTP code: 422 for bad input (annotations,
// policy output), 403 where no pool may serve the pod.
type planError struct {
	code int32
	msg  string
}

func (e *planError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &planError{code: http.StatusUnprocessableEntity, msg: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) error {
	return &planError{code: http.StatusForbidden, msg: fmt.Sprintf(format, args...)}
}

// buildPlan turns the policies' decision into attachments with names and
// candidate pools. node is the Node the pod is pinned to (nil if none or not
// found).
func buildPlan(pod *corev1.Pod, elems []nadv1.NetworkSelectionElement, dec *policies.Decision, snap *snapshot, node *corev1.Node) (*plan, error) {
	p := &plan{elems: elems, namespace: pod.Namespace}
	p.node, p.nodeSource = pinnedNode(pod)
	for i := range dec.Attachments {
		a, err := newAttachment(i, &dec.Attachments[i], snap)
		if err != nil {
			return nil, err
		}
		p.attachments = append(p.attachments, a)
	}
	p.matchElements()
	if err := p.checkRequested(snap); err != nil {
		return nil, err
	}
	if err := p.nameInterfaces(); err != nil {
		return nil, err
	}
	for _, a := range p.attachments {
		if err := p.resolvePools(a, snap, node); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newAttachment checks one attachment of the policies' output. Policies are
// code written by people: every field is checked and blamed on the policy.
func newAttachment(i int, in *policies.Attachment, snap *snapshot) (*attachment, error) {
	where := fmt.Sprintf("[%s] attachment %d (network %q)", in.Policy, i, in.Network)
	ns, name, ok := strings.Cut(in.Network, "/")
	if !ok || ns == "" || name == "" {
		return nil, invalid("%s: network must be namespace/name", where)
	}
	sum, ok := snap.networks[in.Network]
	if !ok {
		return nil, invalid("%s: no Network or NetworkAttachmentDefinition %s exists", where, in.Network)
	}
	a := &attachment{
		policy: in.Policy, network: in.Network, nw: snap.networkObjs[in.Network], berth: sum.Berth, iface: in.Interface,
		v4: slices.Clone(in.IPv4), v6: slices.Clone(in.IPv6),
		mac: in.MAC, defaultRoute: in.DefaultRoute, resourceName: sum.ResourceName, elem: -1,
	}
	if a.iface != "" {
		if err := nadv1.ValidateInterfaceName(a.iface); err != nil {
			return nil, invalid("%s: interface: %v", where, err)
		}
	}
	if a.mac != "" {
		if _, err := net.ParseMAC(a.mac); err != nil {
			return nil, invalid("%s: mac: %q is not a MAC address", where, a.mac)
		}
	}
	families := map[bool]bool{}
	for j, s := range in.StaticIPs {
		addr, err := parseStatic(s)
		if err != nil {
			return nil, invalid("%s: staticIPs[%d]: %v", where, j, err)
		}
		if families[addr.Is4()] {
			return nil, invalid("%s: staticIPs[%d]: a second address of the same IP family (%s)", where, j, addr)
		}
		families[addr.Is4()] = true
		a.static = append(a.static, addr)
	}
	return a, nil
}

// parseStatic accepts an address or an address in CIDR form (as Multus's
// "ips" carries them) and returns the address.
func parseStatic(s string) (netip.Addr, error) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr.Unmap(), nil
	}
	if prefix, err := netip.ParsePrefix(s); err == nil {
		return prefix.Addr().Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
}

// matchElements pairs attachments with the requested elements they fulfil:
// same network, and the same interface where both name one.
func (p *plan) matchElements() {
	taken := make([]bool, len(p.elems))
	for _, a := range p.attachments {
		best := -1
		for i := range p.elems {
			e := &p.elems[i]
			if taken[i] || e.Key() != a.network {
				continue
			}
			if a.iface != "" && e.InterfaceRequest == a.iface {
				best = i
				break
			}
			if best < 0 && (a.iface == "" || e.InterfaceRequest == "") {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		taken[best] = true
		a.elem = best
		if a.iface == "" {
			a.iface = p.elems[best].InterfaceRequest
		}
	}
}

// checkRequested refuses a pod asking for a Berth network no policy granted:
// without an assignment berth-ipam could only fail on the node, later.
func (p *plan) checkRequested(snap *snapshot) error {
	for i := range p.elems {
		e := &p.elems[i]
		if !snap.networks[e.Key()].Berth || slices.ContainsFunc(p.attachments, func(a *attachment) bool { return a.elem == i }) {
			continue
		}
		return forbidden("annotation %s: element %d requests network %s, which no attachment policy grants this pod", nadv1.NetworksAnnotation, i, e.Key())
	}
	return nil
}

// nameInterfaces gives every attachment its interface name. An unnamed one
// gets net<position+1> as Multus would name it, or the next free netN; the
// names Multus will give unnamed elements Berth leaves alone are avoided.
func (p *plan) nameInterfaces() error {
	used := map[string]bool{}
	defaults := 0
	routes := 0
	for _, a := range p.attachments {
		if a.iface == "" {
			continue
		}
		if used[a.iface] {
			return invalid("[%s] attachment for network %s: interface %q is given to two attachments", a.policy, a.network, a.iface)
		}
		used[a.iface] = true
	}
	for i := range p.elems {
		if slices.ContainsFunc(p.attachments, func(a *attachment) bool { return a.elem == i }) {
			continue
		}
		if name := p.elems[i].InterfaceRequest; name != "" {
			used[name] = true
		}
	}
	// Positions in the networks annotation Berth writes: requested elements
	// (less the one moved to the default network), then added attachments.
	pos := 0
	var unnamed []struct {
		a   *attachment
		pos int
	}
	for i := range p.elems {
		a := p.attachmentOf(i)
		if a != nil && a.iface == defaultInterface {
			continue
		}
		switch {
		case a == nil && p.elems[i].InterfaceRequest == "":
			used["net"+strconv.Itoa(pos+1)] = true
		case a != nil && a.iface == "":
			unnamed = append(unnamed, struct {
				a   *attachment
				pos int
			}{a, pos})
		}
		pos++
	}
	for _, a := range p.attachments {
		if a.elem >= 0 || a.iface == defaultInterface {
			continue
		}
		if a.iface == "" {
			unnamed = append(unnamed, struct {
				a   *attachment
				pos int
			}{a, pos})
		}
		pos++
	}
	for _, u := range unnamed {
		name := "net" + strconv.Itoa(u.pos+1)
		for n := 1; used[name]; n++ {
			name = "net" + strconv.Itoa(n)
		}
		u.a.iface = name
		used[name] = true
	}
	for _, a := range p.attachments {
		if a.iface == defaultInterface {
			defaults++
		}
		if a.defaultRoute {
			routes++
		}
	}
	if defaults > 1 {
		return invalid("attachments: %d attachments claim %s, the pod's default network; at most one may", defaults, defaultInterface)
	}
	if routes > 1 {
		return invalid("attachments: %d attachments carry the default route; at most one may", routes)
	}
	return nil
}

func (p *plan) attachmentOf(elem int) *attachment {
	for _, a := range p.attachments {
		if a.elem == elem {
			return a
		}
	}
	return nil
}

// resolvePools fixes the candidate pools of a: the policy's, else the
// Network's spec.ippools, else the default pools serving the network and
// selecting the pod. Wherever they come from, a pool stays a candidate only
// if it may serve this pod: its namespace and pod selectors select it, its
// spec.networks admit the network, and it serves the node the pod is bound
// to. The policies check the pools they choose (pool-selectors), but not
// those of a Network: without this a tenant could take another tenant's
// addresses through a Network of its own naming their pool. A family whose
// every candidate is refused denies the pod, with each pool's reason.
func (p *plan) resolvePools(a *attachment, snap *snapshot, node *corev1.Node) error {
	where := fmt.Sprintf("[%s] interface %s (network %s)", a.policy, a.iface, a.network)
	if !a.berth {
		// The NAD's own IPAM gives the addresses; anything Berth reserved
		// would be held by no interface.
		if len(a.v4)+len(a.v6)+len(a.static) > 0 {
			return invalid("%s: the network's NetworkAttachmentDefinition does not use berth-ipam, so Berth reserves no addresses for it: it cannot be given pools (ipv4 %v, ipv6 %v) or static addresses %v", where, a.v4, a.v6, a.static)
		}
		return nil
	}
	source := "the policy"
	if len(a.v4)+len(a.v6) == 0 {
		sum := snap.networks[a.network]
		a.v4, a.v6 = slices.Clone(sum.IPv4Pools), slices.Clone(sum.IPv6Pools)
		source = "spec.ippools of Network " + a.network
		if a.nw != nil {
			source = fmt.Sprintf("spec.ippools of Network %s/%s", a.nw.Namespace, a.nw.Name)
		}
		if len(a.v4)+len(a.v6) == 0 {
			a.v4, a.v6 = snap.defaultPools(a)
			source = "the default pools"
		}
	}
	if len(a.v4)+len(a.v6) == 0 {
		msg := fmt.Sprintf("%s: no IP pool serves this pod: name pools in the policy or in the Network's spec.ippools, or mark a pool that selects the pod default", where)
		if refused := p.refusedDefaults(snap, a, node); len(refused) > 0 {
			msg += " (default pools of the network refused: " + strings.Join(refused, "; ") + ")"
		}
		return forbidden("%s", msg)
	}
	for _, fam := range []struct {
		pools  *[]string
		family int
		field  string
	}{{&a.v4, 4, "ipv4"}, {&a.v6, 6, "ipv6"}} {
		var kept, refused []string
		for _, name := range *fam.pools {
			pool, ok := snap.pools[name]
			if !ok {
				return invalid("%s: %s pool %q from %s does not exist", where, fam.field, name, source)
			}
			if got := snap.summaries[name].Family; got != fam.family {
				return invalid("%s: %s pool %q from %s is an IPv%d pool", where, fam.field, name, source, got)
			}
			if why := p.refusal(pool, snap.summaries[name], a, node); why != "" {
				refused = append(refused, fmt.Sprintf("pool %q %s", name, why))
				continue
			}
			kept = append(kept, name)
		}
		if len(kept) == 0 && len(refused) > 0 {
			return forbidden("%s: none of the %s pools %v from %s may serve this pod: %s", where, fam.field, *fam.pools, source, strings.Join(refused, "; "))
		}
		*fam.pools = kept
	}
	for _, addr := range a.static {
		if (addr.Is4() && len(a.v4) == 0) || (addr.Is6() && len(a.v6) == 0) {
			return invalid("%s: static address %s has no pool of its family", where, addr)
		}
	}
	return nil
}

// refusal says why pool may not give attachment a of this pod an address,
// or "" when it may. sum holds the pool's selector matches for the pod.
func (p *plan) refusal(pool *berthv1.IPPool, sum policies.PoolSummary, a *attachment, node *corev1.Node) string {
	switch {
	case !sum.MatchesNamespace:
		return fmt.Sprintf("does not serve namespace %q: its spec.namespaceSelector does not select it", p.namespace)
	case !sum.MatchesPod:
		return "does not serve this pod: its spec.podSelector does not select the pod's labels"
	case !servesNetwork(pool, a):
		return fmt.Sprintf("serves networks %v, not %s", pool.Spec.Networks, a.network)
	case p.node != "" && !servesNode(pool, p.node, node):
		return fmt.Sprintf("does not serve node %q, to which the pod is bound (%s)", p.node, p.nodeSource)
	}
	return ""
}

// refusedDefaults says why each default pool serving a's network was not a
// candidate, in name order.
func (p *plan) refusedDefaults(snap *snapshot, a *attachment, node *corev1.Node) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(snap.pools)) {
		pool := snap.pools[name]
		if !pool.Spec.Default || pool.Spec.Disable || !servesNetwork(pool, a) {
			continue
		}
		if why := p.refusal(pool, snap.summaries[name], a, node); why != "" {
			out = append(out, fmt.Sprintf("pool %q %s", name, why))
		}
	}
	return out
}

// pinnedNode returns the node a pod is bound to before scheduling: its
// spec.nodeName, or the single node every required affinity term names by
// metadata.name (how the DaemonSet controller pins its pods).
func pinnedNode(pod *corev1.Pod) (node, source string) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, "spec.nodeName"
	}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", ""
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, t := range terms {
		name := ""
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				name = f.Values[0]
			}
		}
		if name == "" || (node != "" && name != node) {
			return "", ""
		}
		node = name
	}
	if node == "" {
		return "", ""
	}
	return node, "required node affinity on metadata.name"
}

// servesNode tells whether pool serves the named node; node is nil when the
// Node object is unknown, so only spec.nodeNames can match it.
func servesNode(pool *berthv1.IPPool, name string, node *corev1.Node) bool {
	if !nodeBound(pool) {
		return true
	}
	if slices.Contains(pool.Spec.NodeNames, name) {
		return true
	}
	if pool.Spec.NodeSelector == nil || node == nil {
		return false
	}
	ok, err := selects(pool.Spec.NodeSelector, node.Labels)
	return err == nil && ok
}
