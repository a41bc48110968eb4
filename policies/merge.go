package policies

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
	"k8s.io/apimachinery/pkg/util/validation"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// decided is what one policy's deciding rules returned.
type decided struct {
	attachments  []partial
	defaultRoute string // empty: the policy does not decide it
	// denials of a policy whose deny rules do not read the decision, which
	// the same query evaluates.
	denials []string
}

// partial is one element of a policy's attachments set: the interface and
// the fields the policy decides for it. A nil field is left to other
// policies. IPv4 and IPv6 are decided together: a policy naming pools of one
// family decides that the other has none.
type partial struct {
	Interface string
	Network   *string
	Pools     *pools
	StaticIPs *[]string
	MAC       *string
}

type pools struct{ IPv4, IPv6 []string }

// decideOutput reads the result of a deciding query. Output of the wrong
// shape is an error of the policy.
func decideOutput(rs rego.ResultSet) (decided, error) {
	var out decided
	if len(rs) != 1 {
		return out, fmt.Errorf("the deciding query returned %d results, want 1", len(rs))
	}
	atts, _ := rs[0].Bindings["attachments"].([]any)
	for i, a := range atts {
		p, err := parsePartial(a)
		if err != nil {
			return out, fmt.Errorf("%s[%d]: %w", ruleAttachments, i, err)
		}
		out.attachments = append(out.attachments, p)
	}
	if routes, _ := rs[0].Bindings["default_route"].([]any); len(routes) == 1 {
		s, ok := routes[0].(string)
		if !ok {
			return out, fmt.Errorf("%s: %v is not a string", ruleDefaultRoute, routes[0])
		}
		if err := nadv1.ValidateInterfaceName(s); err != nil {
			return out, fmt.Errorf("%s: %w", ruleDefaultRoute, err)
		}
		out.defaultRoute = s
	}
	if _, ok := rs[0].Bindings["deny"]; ok {
		var err error
		if out.denials, err = denyOutput(rs); err != nil {
			return out, err
		}
	}
	return out, nil
}

// parsePartial checks one attachment object of a policy's output.
func parsePartial(v any) (partial, error) {
	var p partial
	obj, ok := v.(map[string]any)
	if !ok {
		return p, fmt.Errorf("%v is not an object", v)
	}
	for key, val := range obj {
		var err error
		switch key {
		case "interface":
			p.Interface, err = stringField(key, val)
			if err == nil {
				err = nadv1.ValidateInterfaceName(p.Interface)
			}
		case "network":
			var s string
			if s, err = stringField(key, val); err == nil {
				err = validNetwork(s)
				p.Network = &s
			}
		case "ipv4", "ipv6":
			var names []string
			if names, err = stringsField(key, val); err == nil {
				if p.Pools == nil {
					p.Pools = &pools{}
				}
				if key == "ipv4" {
					p.Pools.IPv4 = names
				} else {
					p.Pools.IPv6 = names
				}
			}
		case "staticIPs":
			var ips []string
			if ips, err = stringsField(key, val); err == nil {
				err = validStaticIPs(ips)
				p.StaticIPs = &ips
			}
		case "mac":
			var s string
			if s, err = stringField(key, val); err == nil {
				if _, perr := net.ParseMAC(s); perr != nil {
					err = fmt.Errorf("mac: %q is not a MAC address", s)
				}
				p.MAC = &s
			}
		default:
			err = fmt.Errorf("unknown field %q (known: interface, network, ipv4, ipv6, staticIPs, mac)", key)
		}
		if err != nil {
			return p, err
		}
	}
	if p.Interface == "" {
		return p, fmt.Errorf("interface: required")
	}
	return p, nil
}

func stringField(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: %v is not a string", key, v)
	}
	return s, nil
}

func stringsField(key string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: %v is not a list of strings", key, v)
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%s[%d]: %v is not a non-empty string", key, i, x)
		}
		out = append(out, s)
	}
	return out, nil
}

func validNetwork(s string) error {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return fmt.Errorf("network: %q is not namespace/name", s)
	}
	return nil
}

func validStaticIPs(ips []string) error {
	families := map[bool]bool{}
	for i, s := range ips {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("staticIPs[%d]: %q is not an IP address", i, s)
		}
		if families[addr.Is4()] {
			return fmt.Errorf("staticIPs[%d]: a second address of the same IP family", i)
		}
		families[addr.Is4()] = true
	}
	return nil
}

// denyOutput reads the messages of a deny query.
func denyOutput(rs rego.ResultSet) ([]string, error) {
	if len(rs) != 1 {
		return nil, fmt.Errorf("the deny query returned %d results, want 1", len(rs))
	}
	list, _ := rs[0].Bindings["deny"].([]any)
	msgs := make([]string, 0, len(list))
	for i, d := range list {
		s, ok := d.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: %v is not a string", ruleDeny, i, d)
		}
		msgs = append(msgs, s)
	}
	return msgs, nil
}

// decidedField is a decided value and the policy that decided it.
type decidedField[T any] struct {
	value  T
	policy string
	set    bool
}

// merged is the state of one interface across policies.
type merged struct {
	iface     string
	network   decidedField[string]
	pools     decidedField[pools]
	staticIPs decidedField[[]string]
	mac       decidedField[string]
}

// merger applies the merge rule of DESIGN.md: policies are added in
// evaluation order (priority, then name), and for each interface each field
// is decided by the first policy that sets it. A policy contradicting
// itself on one interface is denied; so is an interface that ends up with
// no network.
type merger struct {
	in           *Input
	byIface      map[string]*merged
	order        []string // interfaces in the order first decided
	defaultRoute decidedField[string]
	denials      []Denial
	policies     []string
}

func newMerger(in *Input) *merger {
	return &merger{in: in, byIface: map[string]*merged{}}
}

func (m *merger) contributed(policy string) {
	if !slices.Contains(m.policies, policy) {
		m.policies = append(m.policies, policy)
	}
}

// add merges one policy's output.
func (m *merger) add(policy string, d decided) {
	for _, msg := range d.denials {
		m.denials = append(m.denials, Denial{Policy: policy, Message: msg})
		m.contributed(policy)
	}
	if d.defaultRoute != "" && !m.defaultRoute.set {
		m.defaultRoute = decidedField[string]{value: d.defaultRoute, policy: policy, set: true}
		m.contributed(policy)
	}
	// First merge the policy with itself: two elements for one interface
	// must not contradict each other.
	own := map[string]*merged{}
	var ifaces []string
	for _, p := range d.attachments {
		cur, ok := own[p.Interface]
		if !ok {
			cur = &merged{iface: p.Interface}
			own[p.Interface] = cur
			ifaces = append(ifaces, p.Interface)
		}
		conflict := ""
		if p.Network != nil {
			conflict = cmp.Or(conflict, setOnce(&cur.network, *p.Network, policy, "network", func(a, b string) bool { return a == b }))
		}
		if p.Pools != nil {
			conflict = cmp.Or(conflict, setOnce(&cur.pools, *p.Pools, policy, "pools", func(a, b pools) bool {
				return slices.Equal(a.IPv4, b.IPv4) && slices.Equal(a.IPv6, b.IPv6)
			}))
		}
		if p.StaticIPs != nil {
			conflict = cmp.Or(conflict, setOnce(&cur.staticIPs, *p.StaticIPs, policy, "staticIPs", slices.Equal[[]string]))
		}
		if p.MAC != nil {
			conflict = cmp.Or(conflict, setOnce(&cur.mac, *p.MAC, policy, "mac", func(a, b string) bool { return a == b }))
		}
		if conflict != "" {
			m.denials = append(m.denials, Denial{Policy: policy, Message: fmt.Sprintf("interface %s: the policy decides %s twice, differently", p.Interface, conflict)})
			m.contributed(policy)
		}
	}
	// Then fill what earlier (lower priority number) policies left open.
	for _, iface := range ifaces {
		src := own[iface]
		dst, ok := m.byIface[iface]
		if !ok {
			dst = &merged{iface: iface}
			m.byIface[iface] = dst
			m.order = append(m.order, iface)
		}
		took := fill(&dst.network, src.network)
		took = fill(&dst.pools, src.pools) || took
		took = fill(&dst.staticIPs, src.staticIPs) || took
		took = fill(&dst.mac, src.mac) || took
		if took {
			m.contributed(policy)
		}
	}
}

// setOnce sets f, or returns name if f already holds a different value.
func setOnce[T any](f *decidedField[T], v T, policy, name string, equal func(a, b T) bool) string {
	if f.set {
		if equal(f.value, v) {
			return ""
		}
		return name
	}
	*f = decidedField[T]{value: v, policy: policy, set: true}
	return ""
}

func fill[T any](dst *decidedField[T], src decidedField[T]) bool {
	if dst.set || !src.set {
		return false
	}
	*dst = src
	return true
}

// decision builds the Decision: attachments of the requested networks first
// in their order, then the others by interface name (net2 before net10).
func (m *merger) decision() *Decision {
	rank := map[string]int{}
	for i, r := range m.in.RequestedNetworks {
		if _, ok := rank[r.Interface]; !ok {
			rank[r.Interface] = i
		}
	}
	ifaces := slices.Clone(m.order)
	slices.SortStableFunc(ifaces, func(a, b string) int {
		ra, oka := rank[a]
		rb, okb := rank[b]
		switch {
		case oka && okb:
			return cmp.Compare(ra, rb)
		case oka:
			return -1
		case okb:
			return 1
		}
		return naturalCompare(a, b)
	})
	route := m.defaultRouteInterface()
	dec := &Decision{Attachments: []Attachment{}}
	for _, iface := range ifaces {
		mg := m.byIface[iface]
		if !mg.network.set {
			// Something was decided for an interface no policy attaches:
			// most often an annotation naming an interface the pod does
			// not have.
			blame := cmp.Or(mg.pools.policy, mg.staticIPs.policy, mg.mac.policy)
			m.denials = append(m.denials, Denial{Policy: blame, Message: fmt.Sprintf("interface %s: addresses are decided for it, but no policy attaches a network to it; is it one of the pod's networks?", iface)})
			continue
		}
		a := Attachment{
			Network:   mg.network.value,
			Interface: iface,
			IPv4:      mg.pools.value.IPv4,
			IPv6:      mg.pools.value.IPv6,
			StaticIPs: mg.staticIPs.value,
			MAC:       mg.mac.value,
			Policy:    mg.network.policy,
		}
		a.DefaultRoute = iface == route
		dec.Attachments = append(dec.Attachments, a)
	}
	dec.Denials = m.denials
	dec.Policies = m.policies
	return dec
}

// defaultRouteInterface is the interface carrying the pod's default route:
// the one a policy decided, else (no policy decides it and no element of the
// pod's Multus annotations asks for "default-route") eth0, as without Berth.
// An attachment on eth0 then carries it: otherwise berth-ipam would give
// eth0 no default route and berth-coordinator would route eth0 as a
// secondary interface, leaving the pod with no default route at all.
func (m *merger) defaultRouteInterface() string {
	if m.defaultRoute.set {
		return m.defaultRoute.value
	}
	for _, r := range m.in.RequestedNetworks {
		if r.DefaultRoute {
			return "" // Multus gives it to that element's interface
		}
	}
	return DefaultInterface
}

// naturalCompare orders names with a numeric suffix by that number.
func naturalCompare(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(na, nb), cmp.Compare(a, b))
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}
