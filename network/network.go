// Package network holds what the Network controller, its validation and its
// renderer agree on about a Network object: the annotations that steer the
// generated NetworkAttachmentDefinition, the label it carries, and the names
// and versions derived from them.
package network

import (
	"slices"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// Annotations a user may set on a Network.
const (
	// AnnotationNADName names the generated NetworkAttachmentDefinition;
	// absent, it takes the Network's name.
	AnnotationNADName = "berth.io/nad-name"
	// AnnotationCNIVersion is the cniVersion of the generated configuration;
	// absent, DefaultCNIVersion (or, for a custom config, the config's own).
	AnnotationCNIVersion = "berth.io/cni-version"
	// AnnotationAdoptNAD: "true" lets the controller take over a
	// NetworkAttachmentDefinition of the same name that nobody controls.
	// Without it such a NAD is left alone and the Network's status says why.
	AnnotationAdoptNAD = "berth.io/adopt-nad"
)

// LabelNetwork is set on every generated NetworkAttachmentDefinition to the
// name of the Network it comes from, so `kubectl get net-attach-def -l
// berth.io/network` finds them.
const LabelNetwork = "berth.io/network"

// DefaultCNIVersion is the cniVersion of generated configurations: Multus 4,
// the reference plugins, SR-IOV CNI, OVS CNI and Berth's plugins all speak it.
const DefaultCNIVersion = "1.0.0"

// SupportedCNIVersions are the versions berth-ipam and berth-coordinator
// answer, hence the only ones a Network may ask for.
var supportedCNIVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// SupportedCNIVersions returns the cniVersions a Network may ask for.
func SupportedCNIVersions() []string { return slices.Clone(supportedCNIVersions) }

// CNIVersionSupported tells whether v may be asked for.
func CNIVersionSupported(v string) bool { return slices.Contains(supportedCNIVersions, v) }

// NADName is the name of the NetworkAttachmentDefinition nw generates.
func NADName(nw *berthv1.Network) string {
	if name := nw.Annotations[AnnotationNADName]; name != "" {
		return name
	}
	return nw.Name
}

// CNIVersion is the cniVersion nw asks for, or "" for the default.
func CNIVersion(nw *berthv1.Network) string { return nw.Annotations[AnnotationCNIVersion] }

// AdoptsNAD tells whether nw may take over an uncontrolled NAD of its name.
func AdoptsNAD(nw *berthv1.Network) bool { return nw.Annotations[AnnotationAdoptNAD] == "true" }

// Pools returns the names of the pools nw names in spec.ippools, IPv4 first,
// without duplicates.
func Pools(nw *berthv1.Network) []string {
	if nw.Spec.IPPools == nil {
		return nil
	}
	var out []string
	for _, p := range append(slices.Clone(nw.Spec.IPPools.IPv4), nw.Spec.IPPools.IPv6...) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// CoordinatorMode is the berth-coordinator mode nw's pods get: the Network's
// own setting, else the Coordinator's, else auto. coord may be nil.
func CoordinatorMode(nw *berthv1.Network, coord *berthv1.Coordinator) berthv1.CoordinatorMode {
	if c := nw.Spec.Coordinator; c != nil && c.Mode != nil {
		return *c.Mode
	}
	if coord != nil && coord.Spec.Mode != nil {
		return *coord.Spec.Mode
	}
	return berthv1.CoordinatorAuto
}

// NeedsCoordinator tells whether pods attached to nw depend on the cluster
// CIDRs the Coordinator detects: berth-coordinator is in the chain and routes.
// The webhook denies such pods while the Coordinator is not ready.
func NeedsCoordinator(nw *berthv1.Network, coord *berthv1.Coordinator) bool {
	if c := nw.Spec.Coordinator; c != nil && c.Disabled {
		return false
	}
	return CoordinatorMode(nw, coord) != berthv1.CoordinatorDisabled
}

// ServesNetwork tells whether pool lists nw among the networks it serves, by
// any name nw goes by: the Network's own or that of the NAD it generates
// (berth.io/nad-name), as namespace/name or as a bare name matching in any
// namespace (Named). Pods name the NAD, so a pool listing only the NAD's
// name serves nw's pods as much as one listing the Network. An empty list
// serves every Network, but that is not an explicit listing, so it reports
// false.
func ServesNetwork(pool *berthv1.IPPool, nw *berthv1.Network) bool {
	return Named(pool.Spec.Networks, Keys(NADKey(nw), nw)...)
}

// PoolAllows tells whether pool may serve nw at all: it lists nw, or lists no
// Network.
func PoolAllows(pool *berthv1.IPPool, nw *berthv1.Network) bool {
	return len(pool.Spec.Networks) == 0 || ServesNetwork(pool, nw)
}
