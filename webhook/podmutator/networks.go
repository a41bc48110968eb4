package podmutator

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/berth-io/berth/api/cniconf"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/policies"
)

// indexNetworks fills s.networks and s.networkObjs from the cluster's NADs
// and Networks. Pods, policies and attachments name a network by its NAD
// (namespace/name, what Multus reads), so both maps are keyed by the NAD's
// name, and a Network is found under the name of the NAD it generates (or
// still controls under an old name): network.NADNetworks, the rule the
// IPPool validator and the Network controller follow too.
func (s *snapshot) indexNetworks(nads []nadv1.NetworkAttachmentDefinition, nets []berthv1.Network) {
	byKey := make(map[string]*nadv1.NetworkAttachmentDefinition, len(nads))
	for i := range nads {
		nad := &nads[i]
		byKey[nad.Namespace+"/"+nad.Name] = nad
	}
	s.networkObjs = network.NADNetworks(nets, nads)

	for key, nad := range byKey {
		sum := policies.NetworkSummary{
			Namespace:    nad.Namespace,
			Name:         nad.Name,
			ResourceName: nad.Annotations[nadv1.ResourceNameAnnotation],
		}
		// One parse per NAD: every admission indexes every NAD.
		plugins, err := parsePlugins(nad.Spec.Config)
		sum.Berth = plugins.usesBerthIPAM()
		if n := s.networkObjs[key]; n != nil {
			sum = networkSummary(n, sum)
			// A NAD the Network controls but whose config does not parse
			// (being rewritten, or edited by hand) will be rendered again:
			// the Network's spec says what it will be.
			if err != nil && network.OwnerNetwork(nad) == n.Name {
				sum.Berth = networkUsesBerthIPAM(n)
			}
			if err == nil {
				s.chainsCoordinator[key] = plugins.chainsCoordinator()
			}
		}
		s.networks[key] = sum
	}
	for key, n := range s.networkObjs {
		if _, ok := byKey[key]; ok {
			continue
		}
		// The controller has not written the NAD yet: Multus will find it
		// by the time the pod is started, rendered from this spec.
		ns, name, _ := strings.Cut(key, "/")
		sum := networkSummary(n, policies.NetworkSummary{Namespace: ns, Name: name})
		sum.Berth = networkUsesBerthIPAM(n)
		s.networks[key] = sum
	}
}

// networkSummary completes the summary of a NAD with its Network's data.
func networkSummary(n *berthv1.Network, sum policies.NetworkSummary) policies.NetworkSummary {
	sum.Network = n.Namespace + "/" + n.Name
	sum.CNIType = string(n.Spec.CNIType)
	// The generated NAD carries the resource name; the Network has it
	// before the controller has written the NAD.
	if sum.ResourceName == "" && n.Spec.SRIOV != nil {
		sum.ResourceName = n.Spec.SRIOV.ResourceName
	}
	if sum.ResourceName == "" && n.Spec.CNIType == berthv1.CNITypeCustom {
		sum.ResourceName = n.Annotations[nadv1.ResourceNameAnnotation]
	}
	if n.Spec.IPPools != nil {
		sum.IPv4Pools = n.Spec.IPPools.IPv4
		sum.IPv6Pools = n.Spec.IPPools.IPv6
	}
	return sum
}

// plugins are the plugin configurations of a CNI configuration: the
// list's "plugins", or the configuration itself when it is one plugin.
type plugins []map[string]any

// parsePlugins parses a CNI configuration; an error says it is not a JSON
// object (Multus would refuse it too).
func parsePlugins(config string) (plugins, error) {
	var top map[string]any
	if err := json.Unmarshal([]byte(config), &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("not a JSON object")
	}
	list, isList := top["plugins"].([]any)
	if !isList {
		return plugins{top}, nil
	}
	out := make(plugins, 0, len(list))
	for _, p := range list {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// usesBerthIPAM tells whether a plugin's ipam.type is berth-ipam. Only such
// a plugin reads the assignment: a network with another IPAM, or none
// ("ipam": {}), gets its addresses elsewhere, and whatever the webhook
// reserved for it would be held by no interface.
func (ps plugins) usesBerthIPAM() bool {
	for _, p := range ps {
		if ipam, ok := p["ipam"].(map[string]any); ok && ipam["type"] == cniconf.IPAMType {
			return true
		}
	}
	return false
}

// chainsCoordinator tells whether the configuration runs berth-coordinator:
// a plugin of that type whose mode is not disabled. It is there whatever
// the main plugin's IPAM: a custom Network with an IPAM of its own gets it
// too.
func (ps plugins) chainsCoordinator() bool {
	for _, p := range ps {
		if p["type"] == cniconf.CoordinatorType && p["mode"] != string(berthv1.CoordinatorDisabled) {
			return true
		}
	}
	return false
}

// networkUsesBerthIPAM tells whether the NAD nw generates uses berth-ipam:
// every cniType but custom does; a custom config does unless its first
// plugin names an IPAM of its own (or an empty one), as network/render
// completes it. A custom config that does not parse renders no NAD; it is
// counted as Berth's, so that the webhook checks the pod's pools anyway.
func networkUsesBerthIPAM(nw *berthv1.Network) bool {
	if nw.Spec.CNIType != berthv1.CNITypeCustom || nw.Spec.Custom == nil {
		return true
	}
	ps, err := parsePlugins(nw.Spec.Custom.Config)
	if err != nil || len(ps) == 0 {
		return true
	}
	if _, has := ps[0]["ipam"]; !has {
		return true
	}
	return ps.usesBerthIPAM()
}
