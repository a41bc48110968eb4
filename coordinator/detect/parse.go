package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ParseCIDRList parses a list of CIDRs separated by commas and/or white
// space, as kubeadm, the Kubernetes flags (comma) and Cilium (space) write
// them. Each CIDR is returned in canonical form with its host bits cleared;
// duplicates are dropped, order is kept. An empty list is no error.
func ParseCIDRList(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", f)
		}
		c := p.Masked().String()
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// union appends to a the entries of b it lacks.
func union(a []string, b ...string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// KubeadmNetworking reads networking.podSubnet and networking.serviceSubnet
// from the ClusterConfiguration document of kubeadm's kube-system/
// kubeadm-config ConfigMap. Missing values give empty lists.
func KubeadmNetworking(cm *corev1.ConfigMap) (pods, services []string, err error) {
	doc, ok := cm.Data["ClusterConfiguration"]
	if !ok {
		return nil, nil, errors.New(`has no "ClusterConfiguration" key`)
	}
	var cc struct {
		Networking struct {
			PodSubnet     string `json:"podSubnet"`
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cc); err != nil {
		return nil, nil, fmt.Errorf("ClusterConfiguration is not YAML kubeadm wrote: %w", err)
	}
	if pods, err = ParseCIDRList(cc.Networking.PodSubnet); err != nil {
		return nil, nil, fmt.Errorf("ClusterConfiguration networking.podSubnet: %w", err)
	}
	if services, err = ParseCIDRList(cc.Networking.ServiceSubnet); err != nil {
		return nil, nil, fmt.Errorf("ClusterConfiguration networking.serviceSubnet: %w", err)
	}
	return pods, services, nil
}

// FlagValues returns every value given to flag (its name without dashes) on
// a command line: "--flag=v", "-flag=v", "--flag v" and "-flag v", as Go's
// and pflag's parsers accept them.
func FlagValues(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if name == a || name == "" {
			continue // not a flag
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			if n == flag {
				out = append(out, v)
			}
			continue
		}
		if name == flag && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

// Component tells which control-plane program a pod runs, by the kubeadm
// label "component" or else by the binary its container command starts.
func Component(p *corev1.Pod) string {
	if c := p.Labels["component"]; c != "" {
		return c
	}
	for _, c := range p.Spec.Containers {
		if len(c.Command) > 0 {
			return path.Base(c.Command[0])
		}
	}
	return ""
}

// PodFlagCIDRs collects the CIDRs given to flag by the pods running
// component, in the order of the pods given, and names the pods that set it.
func PodFlagCIDRs(pods []corev1.Pod, component, flag string) (cidrs, from []string, err error) {
	for i := range pods {
		p := &pods[i]
		if Component(p) != component {
			continue
		}
		set := false
		for _, c := range p.Spec.Containers {
			for _, v := range FlagValues(append(slices.Clone(c.Command), c.Args...), flag) {
				list, err := ParseCIDRList(v)
				if err != nil {
					return nil, nil, fmt.Errorf("pod %s/%s: --%s: %w", p.Namespace, p.Name, flag, err)
				}
				cidrs = union(cidrs, list...)
				set = set || len(list) > 0
			}
		}
		if set {
			from = append(from, p.Name)
		}
	}
	return cidrs, from, nil
}

// CiliumIPAMModes Berth reads pod CIDRs from: the cluster-pool modes, whose
// CIDRs are in the ConfigMap. In "kubernetes" mode Cilium uses the nodes'
// podCIDRs, which come from the cluster's --cluster-cidr.
const (
	ciliumClusterPool       = "cluster-pool"
	ciliumClusterPoolV2Beta = "cluster-pool-v2beta"
	ciliumKubernetes        = "kubernetes"
)

// CiliumCIDRs reads the pod CIDRs of Cilium's cluster-pool IPAM from its
// ConfigMap: cluster-pool-ipv4-cidr and cluster-pool-ipv6-cidr, each one
// CIDR or a list, for the families Cilium enables (IPv4 unless enable-ipv4
// is "false", IPv6 only when enable-ipv6 is "true", as Cilium defaults).
// mode is Cilium's IPAM mode; for modes other than cluster-pool no CIDRs are
// read and the caller decides.
func CiliumCIDRs(cm *corev1.ConfigMap) (cidrs []string, mode string, err error) {
	mode = cm.Data["ipam"]
	if mode == "" {
		mode = ciliumClusterPool // Cilium's default
	}
	if mode != ciliumClusterPool && mode != ciliumClusterPoolV2Beta {
		return nil, mode, nil
	}
	for _, fam := range []struct{ enable, key string }{{"enable-ipv4", "cluster-pool-ipv4-cidr"}, {"enable-ipv6", "cluster-pool-ipv6-cidr"}} {
		on := cm.Data[fam.enable]
		if on == "false" || (fam.enable == "enable-ipv6" && on != "true") {
			continue
		}
		list, err := ParseCIDRList(cm.Data[fam.key])
		if err != nil {
			return nil, mode, fmt.Errorf("%s: %w", fam.key, err)
		}
		cidrs = union(cidrs, list...)
	}
	if len(cidrs) == 0 {
		return nil, mode, errors.New("has no cluster-pool-ipv4-cidr or cluster-pool-ipv6-cidr for a family Cilium enables")
	}
	return cidrs, mode, nil
}
