// Package policies evaluates AttachmentPolicies, Rego modules that decide
// which networks, interfaces and pools a pod gets at admission (or deny it).
// Policies never pick addresses; the allocator does.
package policies

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Evaluator is what the admission webhook sees of the policy engine.
type Evaluator interface {
	// Evaluate runs every enabled policy on in. An error means evaluation
	// itself failed (a runtime error, the time budget): the webhook fails
	// closed and names the policy. Denials are not errors; they are in the
	// Decision.
	Evaluate(ctx context.Context, in *Input) (*Decision, error)
}

// Input is the document policies see as `input`. Deny rules that read it
// also find `input.decision`, the merged Decision, added by the engine.
type Input struct {
	Operation string                    `json:"operation"`
	Pod       *corev1.Pod               `json:"pod"`
	Namespace Namespace                 `json:"namespace"`
	UserInfo  authenticationv1.UserInfo `json:"userInfo"`
	Networks  map[string]NetworkSummary `json:"networks"` // key namespace/name
	Pools     map[string]PoolSummary    `json:"pools"`    // key pool name
	// RequestedNetworks are the attachments the pod asks for in its Multus
	// annotations, in the order Multus creates them; RequestedNetworksOf
	// computes them.
	RequestedNetworks []RequestedNetwork `json:"requestedNetworks"`
}

// RequestedNetwork is one network the pod names in
// v1.multus-cni.io/default-network (interface eth0) or in
// k8s.v1.cni.cncf.io/networks (interface as requested, else net<position>,
// as Multus names it).
type RequestedNetwork struct {
	// Network is namespace/name of the NetworkAttachmentDefinition.
	Network   string `json:"network"`
	Interface string `json:"interface"`
	// IPs, MAC and DefaultRoute are what the selection element asks for:
	// "ips" (static addresses, as written), "mac", and whether it has a
	// "default-route".
	IPs          []string `json:"ips,omitempty"`
	MAC          string   `json:"mac,omitempty"`
	DefaultRoute bool     `json:"defaultRoute,omitempty"`
	// Default is true for the pod's default network (eth0).
	Default bool `json:"default,omitempty"`
}

// Namespace is the part of the pod's namespace policies may look at.
type Namespace struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NetworkSummary describes a NetworkAttachmentDefinition a pod may attach
// to, by the NAD's namespace and name (what Multus reads), completed with the
// Network that generates it, if any, even when the NAD has another name
// (berth.io/nad-name) or is not written yet.
type NetworkSummary struct {
	Namespace    string   `json:"namespace"`
	Name         string   `json:"name"`
	CNIType      string   `json:"cniType,omitempty"`
	ResourceName string   `json:"resourceName,omitempty"`
	IPv4Pools    []string `json:"ipv4Pools,omitempty"`
	IPv6Pools    []string `json:"ipv6Pools,omitempty"`
	// Network is the Berth Network (namespace/name) generating this NAD,
	// when there is one: with berth.io/nad-name it differs from the NAD's,
	// and a pool's spec.networks may name either.
	Network string `json:"network,omitempty"`
	// Berth is true when a plugin of the NAD's config takes its addresses
	// from berth-ipam (for a Network whose NAD is not written yet: when the
	// NAD it will render does), whoever wrote the NAD. Berth reserves
	// addresses only for those; attachments to other networks (an IPAM of
	// their own, or "ipam": {}) pass through untouched: no reservation, no
	// cni-args.
	Berth bool `json:"berth"`
}

// PoolSummary describes an IPPool. The selector matches are computed in Go
// with Kubernetes' own label-selector semantics, so policies need not
// reimplement them.
type PoolSummary struct {
	Name      string   `json:"name"`
	Family    int      `json:"family"` // 4 or 6
	Subnet    string   `json:"subnet"`
	Gateway   string   `json:"gateway,omitempty"`
	Default   bool     `json:"default"`
	Disabled  bool     `json:"disabled"`
	Networks  []string `json:"networks,omitempty"`
	Total     int64    `json:"total"`
	Free      int64    `json:"free"`
	NodeBound bool     `json:"nodeBound"`
	// MatchesNamespace and MatchesPod: the pool's namespace and pod
	// selectors (absent selectors match everything) select this pod.
	MatchesNamespace bool `json:"matchesNamespace"`
	MatchesPod       bool `json:"matchesPod"`
	// Selectors as written, for policies that want more.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
	NodeSelector      *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	NodeNames         []string              `json:"nodeNames,omitempty"`
}

// Decision is the merged result of all policies for one pod.
type Decision struct {
	// Attachments in the order the interfaces are to be created: the
	// pod's requested networks first, in their order, then the others by
	// interface name.
	Attachments []Attachment `json:"attachments"`
	// Denials: any denial rejects the pod.
	Denials []Denial `json:"denials,omitempty"`
	// Policies that contributed an attachment or a denial, for the
	// berth.io/policy annotation.
	Policies []string `json:"policies,omitempty"`
}

// Attachment is one interface a policy decided the pod gets.
type Attachment struct {
	// Network is namespace/name of the Network (NetworkAttachmentDefinition).
	Network string `json:"network"`
	// Interface is the name in the pod, always set: policies name the
	// interface of every attachment. "eth0" makes it the pod's default
	// network.
	Interface string `json:"interface,omitempty"`
	// IPv4 and IPv6 are candidate pools per family in order; both empty
	// means the Network's pools, then default pools serving the Network.
	IPv4 []string `json:"ipv4,omitempty"`
	IPv6 []string `json:"ipv6,omitempty"`
	// StaticIPs are specific addresses, honoured only if a policy put them
	// here (the shipped policy does so only where allowed).
	StaticIPs []string `json:"staticIPs,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	// DefaultRoute makes this interface carry the pod's default route. At
	// most one attachment has it (the engine's merge guarantees it).
	DefaultRoute bool `json:"defaultRoute,omitempty"`
	// Policy is the policy that decided the network of this interface (set
	// by the engine); policies that decided other fields are in
	// Decision.Policies.
	Policy string `json:"policy,omitempty"`
}

// Denial is one reason to reject the pod.
type Denial struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
}
