package render

import (
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
)

// Coordinator is the berth-coordinator configuration pods of nw get: every
// setting the Network sets overrides the Coordinator's; the pod and service
// CIDRs are those in the Coordinator's status (detected from the cluster
// plus its spec's). coord may be nil.
func Coordinator(nw *berthv1.Network, coord *berthv1.Coordinator, kubeconfig string) cniconf.CoordinatorConfig {
	var s berthv1.CoordinatorSettings
	cfg := cniconf.CoordinatorConfig{
		NetConf:    types.NetConf{Type: cniconf.CoordinatorType},
		Kubeconfig: kubeconfig,
	}
	if coord != nil {
		s = *coord.Spec.CoordinatorSettings.DeepCopy()
		cfg.PodCIDRs = slices.Clone(coord.Status.PodCIDRs)
		cfg.ServiceCIDRs = slices.Clone(coord.Status.ServiceCIDRs)
	}
	if nc := nw.Spec.Coordinator; nc != nil {
		overlay(&s, &nc.CoordinatorSettings)
	}
	cfg.Mode = string(network.CoordinatorMode(nw, coord))
	cfg.HijackCIDRs = slices.Clone(s.HijackCIDRs)
	cfg.PodDefaultRouteNIC = deref(s.PodDefaultRouteNIC)
	cfg.PodMACPrefix = deref(s.PodMACPrefix)
	cfg.VethLinkAddress = deref(s.VethLinkAddress)
	cfg.HostRuleTable = s.HostRuleTable
	cfg.PodRPFilter = s.PodRPFilter
	cfg.HostRPFilter = s.HostRPFilter
	cfg.TxQueueLen = s.TxQueueLen
	cfg.DetectGateway = s.DetectGateway
	cfg.DetectIPConflict = s.DetectIPConflict
	return cfg
}

// overlay copies every setting o sets onto s. A non-empty hijack list
// replaces the default one: a network that names its own routes means those.
func overlay(s, o *berthv1.CoordinatorSettings) {
	if o.Mode != nil {
		s.Mode = o.Mode
	}
	if len(o.HijackCIDRs) > 0 {
		s.HijackCIDRs = o.HijackCIDRs
	}
	setIf(&s.PodDefaultRouteNIC, o.PodDefaultRouteNIC)
	setIf(&s.PodMACPrefix, o.PodMACPrefix)
	setIf(&s.HostRuleTable, o.HostRuleTable)
	setIf(&s.PodRPFilter, o.PodRPFilter)
	setIf(&s.HostRPFilter, o.HostRPFilter)
	setIf(&s.TxQueueLen, o.TxQueueLen)
	setIf(&s.DetectGateway, o.DetectGateway)
	setIf(&s.DetectIPConflict, o.DetectIPConflict)
	setIf(&s.VethLinkAddress, o.VethLinkAddress)
}

func setIf[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
