// Package cniconf is the contract between the Network controller, which
// writes NetworkAttachmentDefinitions, and the CNI plugins, which read them:
// the plugin configuration of berth-ipam and of berth-coordinator.
package cniconf

import (
	"github.com/containernetworking/cni/pkg/types"
)

// Plugin type names as they appear in "type" and as binaries in /opt/cni/bin.
const (
	IPAMType        = "berth-ipam"
	CoordinatorType = "berth-coordinator"
)

// IPAMConfig is the "ipam" section of a main plugin's configuration.
type IPAMConfig struct {
	Type string `json:"type"`
	// Kubeconfig is read only when the assignment did not arrive in args.cni
	// or the ips capability (not called through Multus): then berth-ipam
	// GETs the pod once.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Pools carries what berth-ipam needs to complete addresses that arrive
	// through the "ips" runtimeConfig capability (which has no gateway,
	// routes or DNS): the data of the Network's pools.
	Pools []PoolData `json:"pools,omitempty"`
}

// PoolData is the node's copy of an IPPool's routing data.
type PoolData struct {
	Name    string        `json:"name"`
	Subnet  string        `json:"subnet"`
	Gateway string        `json:"gateway,omitempty"`
	Routes  []types.Route `json:"routes,omitempty"`
	DNS     *types.DNS    `json:"dns,omitempty"`
}

// CoordinatorConfig is the berth-coordinator plugin's configuration,
// rendered from the Network's coordinator settings merged over the
// Coordinator "default" resource and its detected CIDRs.
type CoordinatorConfig struct {
	types.NetConf

	Mode               string   `json:"mode,omitempty"` // auto, underlay, overlay
	PodCIDRs           []string `json:"podCIDRs,omitempty"`
	ServiceCIDRs       []string `json:"serviceCIDRs,omitempty"`
	HijackCIDRs        []string `json:"hijackCIDRs,omitempty"`
	PodDefaultRouteNIC string   `json:"podDefaultRouteNIC,omitempty"`
	PodMACPrefix       string   `json:"podMACPrefix,omitempty"`
	HostRuleTable      *int64   `json:"hostRuleTable,omitempty"`
	PodRPFilter        *int32   `json:"podRPFilter,omitempty"`
	HostRPFilter       *int32   `json:"hostRPFilter,omitempty"`
	TxQueueLen         *int32   `json:"txQueueLen,omitempty"`
	DetectGateway      *bool    `json:"detectGateway,omitempty"`
	DetectIPConflict   *bool    `json:"detectIPConflict,omitempty"`
	VethLinkAddress    string   `json:"vethLinkAddress,omitempty"`
	// Kubeconfig lets the coordinator read the pod's default-route-nic
	// annotation when called without Multus; through Multus it arrives in
	// args.cni like the assignment.
	Kubeconfig string `json:"kubeconfig,omitempty"`
}
