// Package detect decides the cluster's pod and service CIDRs from what the
// cluster shows (kubeadm's ConfigMap, the control-plane pods' flags, Calico's
// IP pools, Cilium's ConfigMap, ServiceCIDR objects) as the Coordinator's
// podCIDRType says. It is pure: the controller gathers a Cluster snapshot,
// Detect returns the status to write, so every rule is tested in memory.
package detect

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// KubeadmConfig is where kubeadm keeps the cluster configuration.
const KubeadmConfig = "kube-system/kubeadm-config"

// The components whose flags carry the CIDRs when kubeadm's ConfigMap does
// not.
const (
	ControllerManager = "kube-controller-manager"
	APIServer         = "kube-apiserver"
)

// Cluster is a snapshot of what the cluster shows about its CIDRs.
type Cluster struct {
	// KubeadmConfig is kube-system/kubeadm-config, nil when absent.
	KubeadmConfig *corev1.ConfigMap
	// ControlPlanePods are the kube-system pods running kube-apiserver or
	// kube-controller-manager (static pods, as kubeadm runs them).
	ControlPlanePods []corev1.Pod
	// CiliumConfig is Cilium's ConfigMap, nil when absent;
	// CiliumConfigName says where it was looked for.
	CiliumConfig     *corev1.ConfigMap
	CiliumConfigName types.NamespacedName
	// CalicoInstalled says the API serves Calico's IPPool CRD; CalicoPools
	// are its objects.
	CalicoInstalled bool
	CalicoPools     []unstructured.Unstructured
	// ServiceCIDRs are the networking.k8s.io ServiceCIDR objects (the
	// ranges the API server allocates ClusterIPs from, Kubernetes 1.33+).
	ServiceCIDRs []networkingv1.ServiceCIDR
}

// Reasons of the Coordinator's Ready condition.
const (
	ReasonDetected       = "Detected"
	ReasonSpec           = "FromSpec"
	ReasonSourceNotFound = "SourceNotFound"
	ReasonInvalidSource  = "InvalidSource"
	ReasonNoServiceCIDRs = "ServiceCIDRsUnknown"
)

// Result is the status to write.
type Result struct {
	Ready bool
	// Reason is a CamelCase word for the condition; Message says where the
	// CIDRs came from, or what was missing.
	Reason, Message string
	// PodCIDRs and ServiceCIDRs hold what is known, the spec's included,
	// even when not Ready.
	PodCIDRs, ServiceCIDRs []string
}

// source is one way of finding pod CIDRs.
type source struct {
	cidrs []string
	from  string // where they came from, for the message
	// missing: the source does not exist (auto moves on); err: it exists
	// but cannot be used (auto stops there).
	missing string
	err     error
}

// Detect computes the Coordinator's status from its spec and the cluster.
func Detect(spec *berthv1.CoordinatorSpec, c *Cluster) Result {
	typ := spec.PodCIDRType
	if typ == "" {
		typ = berthv1.PodCIDRAuto
	}
	if typ == berthv1.PodCIDRNone {
		return Result{
			Ready: true, Reason: ReasonSpec,
			Message:      "podCIDRType none: the CIDRs are spec.podCIDRs and spec.serviceCIDRs",
			PodCIDRs:     slices.Clone(spec.PodCIDRs),
			ServiceCIDRs: slices.Clone(spec.ServiceCIDRs),
		}
	}

	var pod source
	switch typ {
	case berthv1.PodCIDRCluster:
		pod = clusterSource(c)
	case berthv1.PodCIDRCalico:
		pod = calicoSource(c)
	case berthv1.PodCIDRCilium:
		pod = ciliumSource(c)
	case berthv1.PodCIDRAuto:
		pod = autoSource(c)
	default:
		return Result{Reason: ReasonInvalidSource, Message: fmt.Sprintf("spec.podCIDRType %q is not one of auto, cluster, calico, cilium, none", typ)}
	}
	svc, svcFrom, svcErr := serviceCIDRs(c)

	res := Result{
		PodCIDRs:     union(slices.Clone(pod.cidrs), spec.PodCIDRs...),
		ServiceCIDRs: union(slices.Clone(svc), spec.ServiceCIDRs...),
	}
	switch {
	case pod.err != nil:
		res.Reason, res.Message = ReasonInvalidSource, fmt.Sprintf("podCIDRType %s: %v", typ, pod.err)
	case pod.missing != "":
		res.Reason, res.Message = ReasonSourceNotFound, fmt.Sprintf("podCIDRType %s: no pod CIDRs: %s", typ, pod.missing)
	case svcErr != nil:
		res.Reason, res.Message = ReasonInvalidSource, fmt.Sprintf("service CIDRs: %v", svcErr)
	case len(res.ServiceCIDRs) == 0:
		res.Reason, res.Message = ReasonNoServiceCIDRs, "no service CIDRs: no ServiceCIDR object, no networking.serviceSubnet in "+KubeadmConfig+
			", no --service-cluster-ip-range on a kube-apiserver or kube-controller-manager pod in kube-system; set spec.serviceCIDRs"
	default:
		res.Ready, res.Reason = true, ReasonDetected
		msg := fmt.Sprintf("pod CIDRs from %s", pod.from)
		if len(spec.PodCIDRs) > 0 {
			msg += " and spec.podCIDRs"
		}
		if svcFrom != "" {
			msg += "; service CIDRs from " + svcFrom
			if len(spec.ServiceCIDRs) > 0 {
				msg += " and spec.serviceCIDRs"
			}
		} else {
			msg += "; service CIDRs from spec.serviceCIDRs"
		}
		res.Message = msg
	}
	return res
}

// autoSource takes the first source that exists: the CNI's own pools
// (Calico, then Cilium) say exactly where pods live, kubeadm's and the
// flags' cluster CIDR only what the cluster was set up with.
func autoSource(c *Cluster) source {
	var missing []string
	for _, f := range []func(*Cluster) source{calicoSource, ciliumSource, clusterSource} {
		s := f(c)
		if s.err != nil || s.missing == "" {
			if s.err == nil {
				s.from += " (chosen by podCIDRType auto)"
			}
			return s
		}
		missing = append(missing, s.missing)
	}
	return source{missing: strings.Join(missing, "; ")}
}

func clusterSource(c *Cluster) source {
	var why []string
	if cm := c.KubeadmConfig; cm != nil {
		pods, _, err := KubeadmNetworking(cm)
		if err != nil {
			return source{err: fmt.Errorf("ConfigMap %s: %w", KubeadmConfig, err)}
		}
		if len(pods) > 0 {
			return source{cidrs: pods, from: "ConfigMap " + KubeadmConfig + " (networking.podSubnet)"}
		}
		why = append(why, "ConfigMap "+KubeadmConfig+" has no networking.podSubnet")
	} else {
		why = append(why, "ConfigMap "+KubeadmConfig+" not found")
	}
	cidrs, from, err := PodFlagCIDRs(c.ControlPlanePods, ControllerManager, "cluster-cidr")
	if err != nil {
		return source{err: err}
	}
	if len(cidrs) > 0 {
		return source{cidrs: cidrs, from: "the --cluster-cidr flag of kube-system pod(s) " + strings.Join(from, ", ")}
	}
	why = append(why, "no kube-controller-manager pod in kube-system sets --cluster-cidr")
	return source{missing: strings.Join(why, " and ")}
}

func calicoSource(c *Cluster) source {
	if !c.CalicoInstalled {
		return source{missing: "Calico's IPPool CRD (" + CalicoIPPoolCRD + ") is not installed"}
	}
	cidrs, names, err := CalicoCIDRs(c.CalicoPools)
	if err != nil {
		return source{err: err}
	}
	if len(cidrs) == 0 {
		return source{missing: "no enabled Calico IPPool for workloads"}
	}
	return source{cidrs: cidrs, from: "Calico IPPools " + strings.Join(names, ", ")}
}

func ciliumSource(c *Cluster) source {
	name := c.CiliumConfigName.String()
	if c.CiliumConfig == nil {
		return source{missing: "ConfigMap " + name + " not found"}
	}
	cidrs, mode, err := CiliumCIDRs(c.CiliumConfig)
	switch {
	case err != nil:
		return source{err: fmt.Errorf("ConfigMap %s: %w", name, err)}
	case mode == ciliumKubernetes:
		// Cilium hands out the nodes' podCIDRs, carved from the cluster CIDR.
		s := clusterSource(c)
		if s.err == nil && s.missing == "" {
			s.from += " (Cilium IPAM mode kubernetes)"
		} else if s.missing != "" {
			s.missing = "Cilium IPAM mode kubernetes uses the cluster CIDR, but " + s.missing
		}
		return s
	case len(cidrs) == 0:
		return source{err: fmt.Errorf("ConfigMap %s: Cilium IPAM mode %q keeps pod CIDRs where Berth cannot read them; use podCIDRType none with spec.podCIDRs", name, mode)}
	}
	return source{cidrs: cidrs, from: "ConfigMap " + name + " (Cilium cluster-pool)"}
}

// serviceCIDRs takes the ServiceCIDR objects when there are any (they are
// what the API server allocates from, and they change at run time), else
// kubeadm's serviceSubnet, else the flags of the API server (or controller
// manager) pods.
func serviceCIDRs(c *Cluster) (cidrs []string, from string, err error) {
	var names []string
	for i := range c.ServiceCIDRs {
		s := &c.ServiceCIDRs[i]
		if s.DeletionTimestamp != nil {
			continue
		}
		for _, cidr := range s.Spec.CIDRs {
			list, err := ParseCIDRList(cidr)
			if err != nil {
				return nil, "", fmt.Errorf("ServiceCIDR %q: %w", s.Name, err)
			}
			cidrs = union(cidrs, list...)
		}
		names = append(names, s.Name)
	}
	if len(cidrs) > 0 {
		slices.Sort(names)
		return cidrs, "ServiceCIDR objects " + strings.Join(names, ", "), nil
	}
	if cm := c.KubeadmConfig; cm != nil {
		_, svc, err := KubeadmNetworking(cm)
		if err != nil {
			return nil, "", fmt.Errorf("ConfigMap %s: %w", KubeadmConfig, err)
		}
		if len(svc) > 0 {
			return svc, "ConfigMap " + KubeadmConfig + " (networking.serviceSubnet)", nil
		}
	}
	for _, comp := range []string{APIServer, ControllerManager} {
		cidrs, from, err := PodFlagCIDRs(c.ControlPlanePods, comp, "service-cluster-ip-range")
		if err != nil {
			return nil, "", err
		}
		if len(cidrs) > 0 {
			return cidrs, "the --service-cluster-ip-range flag of kube-system pod(s) " + strings.Join(from, ", "), nil
		}
	}
	return nil, "", nil
}
