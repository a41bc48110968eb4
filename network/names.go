package network

import (
	"sort"
	"strings"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// The names a network goes by. Pods (and Multus) name a network by its
// NetworkAttachmentDefinition; a Network generates its NAD under NADName,
// which berth.io/nad-name may make another name than the Network's. An
// IPPool's spec.networks may name either: every decision on which pools
// serve which network (the pod webhook, the IPPool overlap check, the
// Network validator, the NAD's pool data) goes through the functions below,
// so that they cannot disagree on what "the same network" is. The shipped
// pool-selectors policy applies the same rule to the policy input, whose
// networks[_].network is the Network NADNetworks finds.

// NADKey is the namespace/name of the NAD nw generates.
func NADKey(nw *berthv1.Network) string { return nw.Namespace + "/" + NADName(nw) }

// Keys returns every namespace/name the network pods reach through the NAD
// nadKey goes by: the NAD's, and the Network's when nw (which generates or
// controls that NAD) is not nil and is named otherwise.
func Keys(nadKey string, nw *berthv1.Network) []string {
	keys := []string{nadKey}
	if nw != nil {
		if own := nw.Namespace + "/" + nw.Name; own != nadKey {
			keys = append(keys, own)
		}
	}
	return keys
}

// Named tells whether a list of spec.networks entries names a network going
// by keys (namespace/name each): an entry is a namespace/name, or a bare name
// that matches the name in any namespace. An empty list names nothing;
// whether it serves every network is the caller's rule.
func Named(entries []string, keys ...string) bool {
	for _, key := range keys {
		_, name, _ := strings.Cut(key, "/")
		for _, e := range entries {
			if e == key || e == name {
				return true
			}
		}
	}
	return false
}

// NADNetworks maps the namespace/name of every NAD a pod may name to the
// Network behind it: each Network under the NAD it generates (NADName;
// whether or not the controller has written it yet), and a NAD a Network
// still controls under an old name (berth.io/nad-name changed and the old
// NAD is not deleted yet) to that Network. When two Networks of a namespace
// generate one name (the Network validator refuses it, but a cache may hold
// both for a moment), the one controlling the NAD wins, else the first by
// name, so that every reader decides alike. NADs of their own are not in
// the map: they go by their own name only.
func NADNetworks(nets []berthv1.Network, nads []nadv1.NetworkAttachmentDefinition) map[string]*berthv1.Network {
	byKey := make(map[string]*nadv1.NetworkAttachmentDefinition, len(nads))
	for i := range nads {
		byKey[nads[i].Namespace+"/"+nads[i].Name] = &nads[i]
	}
	sorted := make([]*berthv1.Network, len(nets))
	for i := range nets {
		sorted[i] = &nets[i]
	}
	sort.Slice(sorted, func(i, j int) bool {
		return sorted[i].Namespace+"/"+sorted[i].Name < sorted[j].Namespace+"/"+sorted[j].Name
	})
	out := make(map[string]*berthv1.Network, len(nets))
	byName := make(map[string]*berthv1.Network, len(nets))
	for _, n := range sorted {
		byName[n.Namespace+"/"+n.Name] = n
		key := NADKey(n)
		if _, taken := out[key]; taken && OwnerNetwork(byKey[key]) != n.Name {
			continue // the first by name keeps it, unless this one controls the NAD
		}
		out[key] = n
	}
	for key, nad := range byKey {
		if _, ok := out[key]; ok {
			continue
		}
		if n := byName[nad.Namespace+"/"+OwnerNetwork(nad)]; n != nil {
			out[key] = n
		}
	}
	return out
}

// OwnerNetwork is the name of the Network controlling nad (in nad's
// namespace), or "". nad may be nil.
func OwnerNetwork(nad *nadv1.NetworkAttachmentDefinition) string {
	if nad == nil {
		return ""
	}
	for _, ref := range nad.OwnerReferences {
		if ref.Kind == "Network" && ref.APIVersion == berthv1.GroupVersion.String() && ref.Controller != nil && *ref.Controller {
			return ref.Name
		}
	}
	// Older controllers, and hand-made fixtures, set no controller flag.
	for _, ref := range nad.OwnerReferences {
		if ref.Kind == "Network" && ref.APIVersion == berthv1.GroupVersion.String() {
			return ref.Name
		}
	}
	return ""
}
