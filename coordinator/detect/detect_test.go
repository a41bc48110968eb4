package detect

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func kubeadm(pod, svc string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n" +
			"kubernetesVersion: v1.37.2\nnetworking:\n  dnsDomain: cluster.local\n  podSubnet: " + pod + "\n  serviceSubnet: " + svc + "\n"},
	}
}

func staticPod(name, component string, command ...string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: map[string]string{"component": component, "tier": "control-plane"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: component, Command: command}}},
	}
}

func cilium(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-config"}, Data: data}
}

func calicoPool(name, cidr string, extra map[string]any) unstructured.Unstructured {
	spec := map[string]any{"cidr": cidr, "ipipMode": "Always", "natOutgoing": true}
	for k, v := range extra {
		spec[k] = v
	}
	u := unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(CalicoIPPool())
	u.SetName(name)
	return u
}

func serviceCIDR(name string, cidrs ...string) networkingv1.ServiceCIDR {
	return networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
}

var ciliumName = types.NamespacedName{Namespace: "kube-system", Name: "cilium-config"}

// TestDetect walks through each podCIDRType and each source, including what
// happens when a source is missing or broken.
func TestDetect(t *testing.T) {
	kcm := staticPod("kube-controller-manager-cp1", "kube-controller-manager",
		"kube-controller-manager", "--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56", "--service-cluster-ip-range", "10.96.0.0/12")
	apiserver := staticPod("kube-apiserver-cp1", "kube-apiserver", "kube-apiserver", "--service-cluster-ip-range=10.97.0.0/16,fd00:10:97::/112")
	svcObjects := []networkingv1.ServiceCIDR{serviceCIDR("kubernetes", "10.96.0.0/16"), serviceCIDR("extra", "10.200.0.0/16")}

	tests := []struct {
		name    string
		typ     berthv1.PodCIDRType
		spec    berthv1.CoordinatorSpec
		cluster Cluster
		ready   bool
		reason  string
		pod     []string
		svc     []string
		msg     string
	}{
		{
			name: "cluster from kubeadm-config, dual stack", typ: berthv1.PodCIDRCluster,
			cluster: Cluster{KubeadmConfig: kubeadm("10.244.0.0/16,fd00:10:244::/56", "10.96.0.0/12,fd00:10:96::/112")},
			ready:   true, reason: ReasonDetected,
			pod: []string{"10.244.0.0/16", "fd00:10:244::/56"}, svc: []string{"10.96.0.0/12", "fd00:10:96::/112"},
			msg: "pod CIDRs from ConfigMap kube-system/kubeadm-config (networking.podSubnet); service CIDRs from ConfigMap kube-system/kubeadm-config (networking.serviceSubnet)",
		},
		{
			name: "ServiceCIDR objects win over kubeadm", typ: berthv1.PodCIDRCluster,
			cluster: Cluster{KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12"), ServiceCIDRs: svcObjects},
			ready:   true, pod: []string{"10.244.0.0/16"}, svc: []string{"10.96.0.0/16", "10.200.0.0/16"},
			msg: "service CIDRs from ServiceCIDR objects extra, kubernetes",
		},
		{
			name: "cluster from pod flags", typ: berthv1.PodCIDRCluster,
			cluster: Cluster{ControlPlanePods: []corev1.Pod{apiserver, kcm}},
			ready:   true, pod: []string{"10.244.0.0/16", "fd00:10:244::/56"}, svc: []string{"10.97.0.0/16", "fd00:10:97::/112"},
			msg: "pod CIDRs from the --cluster-cidr flag of kube-system pod(s) kube-controller-manager-cp1; service CIDRs from the --service-cluster-ip-range flag of kube-system pod(s) kube-apiserver-cp1",
		},
		{
			name: "kubeadm without podSubnet falls back to flags", typ: berthv1.PodCIDRCluster,
			cluster: Cluster{KubeadmConfig: kubeadm(`""`, "10.96.0.0/12"), ControlPlanePods: []corev1.Pod{kcm}},
			ready:   true, pod: []string{"10.244.0.0/16", "fd00:10:244::/56"}, svc: []string{"10.96.0.0/12"},
		},
		{
			name: "cluster with nothing", typ: berthv1.PodCIDRCluster, cluster: Cluster{ServiceCIDRs: svcObjects},
			reason: ReasonSourceNotFound, svc: []string{"10.96.0.0/16", "10.200.0.0/16"},
			msg: "podCIDRType cluster: no pod CIDRs: ConfigMap kube-system/kubeadm-config not found and no kube-controller-manager pod in kube-system sets --cluster-cidr",
		},
		{
			name: "broken kubeadm-config", typ: berthv1.PodCIDRCluster, cluster: Cluster{KubeadmConfig: kubeadm("10.244.0.0", "10.96.0.0/12")},
			reason: ReasonInvalidSource,
			msg:    `podCIDRType cluster: ConfigMap kube-system/kubeadm-config: ClusterConfiguration networking.podSubnet: "10.244.0.0" is not a CIDR`,
		},
		{
			name: "calico pools, disabled and non-workload skipped", typ: berthv1.PodCIDRCalico,
			cluster: Cluster{CalicoInstalled: true, ServiceCIDRs: svcObjects, CalicoPools: []unstructured.Unstructured{
				calicoPool("default-ipv6-ippool", "fd00:10:244::/56", nil),
				calicoPool("default-ipv4-ippool", "192.168.0.0/16", nil),
				calicoPool("old", "172.16.0.0/16", map[string]any{"disabled": true}),
				calicoPool("lb", "198.51.100.0/24", map[string]any{"allowedUses": []any{"LoadBalancer"}}),
				calicoPool("both", "10.10.0.0/16", map[string]any{"allowedUses": []any{"Tunnel", "Workload"}}),
			}},
			ready: true, pod: []string{"10.10.0.0/16", "192.168.0.0/16", "fd00:10:244::/56"},
			msg: "pod CIDRs from Calico IPPools both, default-ipv4-ippool, default-ipv6-ippool",
		},
		{
			name: "calico not installed", typ: berthv1.PodCIDRCalico, cluster: Cluster{ServiceCIDRs: svcObjects},
			reason: ReasonSourceNotFound, msg: "Calico's IPPool CRD (ippools.crd.projectcalico.org) is not installed",
		},
		{
			name: "calico without enabled pool", typ: berthv1.PodCIDRCalico,
			cluster: Cluster{CalicoInstalled: true, ServiceCIDRs: svcObjects, CalicoPools: []unstructured.Unstructured{calicoPool("off", "10.0.0.0/8", map[string]any{"disabled": true})}},
			reason:  ReasonSourceNotFound, msg: "no enabled Calico IPPool for workloads",
		},
		{
			name: "cilium cluster-pool, list form, IPv6 enabled", typ: berthv1.PodCIDRCilium,
			cluster: Cluster{CiliumConfigName: ciliumName, ServiceCIDRs: svcObjects, CiliumConfig: cilium(map[string]string{
				"ipam": "cluster-pool", "enable-ipv4": "true", "enable-ipv6": "true",
				"cluster-pool-ipv4-cidr": "10.0.0.0/9 10.128.0.0/9", "cluster-pool-ipv6-cidr": "fd00:c1::/104",
			})},
			ready: true, pod: []string{"10.0.0.0/9", "10.128.0.0/9", "fd00:c1::/104"},
			msg: "pod CIDRs from ConfigMap kube-system/cilium-config (Cilium cluster-pool)",
		},
		{
			name: "cilium IPv6 pool ignored when IPv6 is off", typ: berthv1.PodCIDRCilium,
			cluster: Cluster{CiliumConfigName: ciliumName, ServiceCIDRs: svcObjects, CiliumConfig: cilium(map[string]string{
				"cluster-pool-ipv4-cidr": "10.0.0.0/8", "cluster-pool-ipv6-cidr": "fd00:c1::/104",
			})},
			ready: true, pod: []string{"10.0.0.0/8"},
		},
		{
			name: "cilium kubernetes mode uses the cluster CIDR", typ: berthv1.PodCIDRCilium,
			cluster: Cluster{CiliumConfigName: ciliumName, KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12"), CiliumConfig: cilium(map[string]string{"ipam": "kubernetes"})},
			ready:   true, pod: []string{"10.244.0.0/16"}, msg: "(Cilium IPAM mode kubernetes)",
		},
		{
			name: "cilium eni mode", typ: berthv1.PodCIDRCilium,
			cluster: Cluster{CiliumConfigName: ciliumName, CiliumConfig: cilium(map[string]string{"ipam": "eni"})},
			reason:  ReasonInvalidSource, msg: `Cilium IPAM mode "eni" keeps pod CIDRs where Berth cannot read them`,
		},
		{
			name: "cilium missing", typ: berthv1.PodCIDRCilium, cluster: Cluster{CiliumConfigName: ciliumName},
			reason: ReasonSourceNotFound, msg: "ConfigMap kube-system/cilium-config not found",
		},
		{
			name: "auto prefers calico over kubeadm", typ: berthv1.PodCIDRAuto,
			cluster: Cluster{CiliumConfigName: ciliumName, KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12"), CalicoInstalled: true,
				CalicoPools: []unstructured.Unstructured{calicoPool("p", "192.168.0.0/16", nil)}},
			ready: true, pod: []string{"192.168.0.0/16"}, svc: []string{"10.96.0.0/12"}, msg: "Calico IPPools p (chosen by podCIDRType auto)",
		},
		{
			name: "auto skips a Calico without pools", typ: "",
			cluster: Cluster{CiliumConfigName: ciliumName, KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12"), CalicoInstalled: true},
			ready:   true, pod: []string{"10.244.0.0/16"}, msg: "kubeadm-config (networking.podSubnet) (chosen by podCIDRType auto)",
		},
		{
			name: "auto stops at a broken Cilium", typ: berthv1.PodCIDRAuto,
			cluster: Cluster{CiliumConfigName: ciliumName, KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12"), CiliumConfig: cilium(map[string]string{"cluster-pool-ipv4-cidr": "nonsense"})},
			reason:  ReasonInvalidSource, svc: []string{"10.96.0.0/12"}, msg: `cluster-pool-ipv4-cidr: "nonsense" is not a CIDR`,
		},
		{
			name: "auto with nothing", typ: berthv1.PodCIDRAuto, cluster: Cluster{CiliumConfigName: ciliumName, ServiceCIDRs: svcObjects},
			reason: ReasonSourceNotFound,
			msg:    "podCIDRType auto: no pod CIDRs: Calico's IPPool CRD (ippools.crd.projectcalico.org) is not installed; ConfigMap kube-system/cilium-config not found; ConfigMap kube-system/kubeadm-config not found and no kube-controller-manager pod",
		},
		{
			name: "spec CIDRs are added", typ: berthv1.PodCIDRCluster,
			spec:    berthv1.CoordinatorSpec{PodCIDRs: []string{"10.250.0.0/16", "10.244.0.0/16"}, ServiceCIDRs: []string{"10.251.0.0/16"}},
			cluster: Cluster{KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12")},
			ready:   true, pod: []string{"10.244.0.0/16", "10.250.0.0/16"}, svc: []string{"10.96.0.0/12", "10.251.0.0/16"},
			msg: "and spec.podCIDRs; service CIDRs from ConfigMap kube-system/kubeadm-config (networking.serviceSubnet) and spec.serviceCIDRs",
		},
		{
			name: "no service CIDRs anywhere", typ: berthv1.PodCIDRCluster, cluster: Cluster{ControlPlanePods: []corev1.Pod{
				staticPod("kcm", "kube-controller-manager", "kube-controller-manager", "--cluster-cidr=10.244.0.0/16")}},
			reason: ReasonNoServiceCIDRs, pod: []string{"10.244.0.0/16"}, msg: "no service CIDRs",
		},
		{
			name: "service CIDRs from the spec alone", typ: berthv1.PodCIDRCluster,
			spec: berthv1.CoordinatorSpec{ServiceCIDRs: []string{"10.96.0.0/12"}},
			cluster: Cluster{ControlPlanePods: []corev1.Pod{
				staticPod("kcm", "kube-controller-manager", "kube-controller-manager", "--cluster-cidr=10.244.0.0/16")}},
			ready: true, pod: []string{"10.244.0.0/16"}, svc: []string{"10.96.0.0/12"}, msg: "service CIDRs from spec.serviceCIDRs",
		},
		{
			name: "none takes the spec", typ: berthv1.PodCIDRNone,
			spec:    berthv1.CoordinatorSpec{PodCIDRs: []string{"10.1.0.0/16"}, ServiceCIDRs: []string{"10.2.0.0/16"}},
			cluster: Cluster{KubeadmConfig: kubeadm("10.244.0.0/16", "10.96.0.0/12")},
			ready:   true, reason: ReasonSpec, pod: []string{"10.1.0.0/16"}, svc: []string{"10.2.0.0/16"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.PodCIDRType = tc.typ
			got := Detect(&spec, &tc.cluster)
			if got.Ready != tc.ready {
				t.Errorf("ready %v, want %v (%s: %s)", got.Ready, tc.ready, got.Reason, got.Message)
			}
			if tc.reason != "" && got.Reason != tc.reason {
				t.Errorf("reason %q, want %q", got.Reason, tc.reason)
			}
			if tc.pod != nil && !slices.Equal(got.PodCIDRs, tc.pod) {
				t.Errorf("pod CIDRs %v, want %v", got.PodCIDRs, tc.pod)
			}
			if tc.svc != nil && !slices.Equal(got.ServiceCIDRs, tc.svc) {
				t.Errorf("service CIDRs %v, want %v", got.ServiceCIDRs, tc.svc)
			}
			if !strings.Contains(got.Message, tc.msg) {
				t.Errorf("message %q\nwant it to contain %q", got.Message, tc.msg)
			}
			if got.Message == "" {
				t.Error("no message")
			}
		})
	}
}

func TestFlagValues(t *testing.T) {
	args := []string{"kube-controller-manager", "--cluster-cidr=a", "-cluster-cidr", "b", "--cluster-cidr", "--other=x", "--cluster-cidr-extra=no", "cluster-cidr=no", "--", "--cluster-cidr"}
	got := FlagValues(args, "cluster-cidr")
	// "--cluster-cidr --other=x" takes "--other=x" as the value, as pflag
	// would; a flag at the very end has no value.
	want := []string{"a", "b", "--other=x"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestParseCIDRList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}, ""},
		{" 10.0.0.1/8 , fd00::1/64\t10.0.0.0/8\n", []string{"10.0.0.0/8", "fd00::/64"}, ""},
		{"10.0.0.0/8,,", []string{"10.0.0.0/8"}, ""},
		{"10.0.0.0", nil, `"10.0.0.0" is not a CIDR`},
		{"10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
	}
	for _, tc := range tests {
		got, err := ParseCIDRList(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestKubeadmNetworkingErrors(t *testing.T) {
	for name, cm := range map[string]*corev1.ConfigMap{
		`has no "ClusterConfiguration" key`:      {Data: map[string]string{"other": "x"}},
		"ClusterConfiguration is not YAML":       {Data: map[string]string{"ClusterConfiguration": "networking: [1, 2"}},
		"networking.serviceSubnet: \"x\" is not": kubeadm("10.0.0.0/8", "x"),
	} {
		if _, _, err := KubeadmNetworking(cm); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v, want it to contain %q", err, name)
		}
	}
}

func TestComponent(t *testing.T) {
	p := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Command: []string{"/usr/local/bin/kube-apiserver", "--x"}}}}}
	if got := Component(&p); got != "kube-apiserver" {
		t.Errorf("by command: %q", got)
	}
	p.Labels = map[string]string{"component": "kube-controller-manager"}
	if got := Component(&p); got != "kube-controller-manager" {
		t.Errorf("by label: %q", got)
	}
}

func FuzzParseCIDRList(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.0.0.1/8, fd00::/64", "a,b", "1.2.3.4/32 1.2.3.4/32", ",,, ", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCIDRList(s)
		if err != nil {
			return
		}
		// Canonical output parses back to itself.
		again, err := ParseCIDRList(strings.Join(got, ","))
		if err != nil || !slices.Equal(got, again) {
			t.Fatalf("%q -> %v -> %v, %v", s, got, again, err)
		}
	})
}

func FuzzKubeadmNetworking(f *testing.F) {
	for _, s := range []string{
		"networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n",
		"networking:\n  podSubnet: 10.244.0.0/16,fd00::/56\n",
		"networking: {}\n", "", "networking: 3", "[", "networking:\n  podSubnet: [1]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		pods, svcs, err := KubeadmNetworking(&corev1.ConfigMap{Data: map[string]string{"ClusterConfiguration": doc}})
		if err != nil {
			return
		}
		for _, c := range append(pods, svcs...) {
			if _, err := ParseCIDRList(c); err != nil {
				t.Fatalf("returned %q, not a CIDR", c)
			}
		}
	})
}

func FuzzFlagValues(f *testing.F) {
	f.Add("kube-apiserver --service-cluster-ip-range=10.96.0.0/12 --x y")
	f.Add("-service-cluster-ip-range 10.0.0.0/8 --service-cluster-ip-range")
	f.Add("--=x - -- ---service-cluster-ip-range=z")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		got := FlagValues(args, "service-cluster-ip-range")
		if len(got) > len(args) {
			t.Fatalf("more values (%d) than arguments (%d)", len(got), len(args))
		}
	})
}

func FuzzCiliumCIDRs(f *testing.F) {
	f.Add("cluster-pool", "10.0.0.0/8", "fd00::/104", "true", "true")
	f.Add("", "10.0.0.0/8 11.0.0.0/8", "", "", "")
	f.Add("kubernetes", "", "", "false", "true")
	f.Add("cluster-pool-v2beta", "x", "y", "true", "false")
	f.Fuzz(func(t *testing.T, mode, v4, v6, en4, en6 string) {
		cm := cilium(map[string]string{"ipam": mode, "cluster-pool-ipv4-cidr": v4, "cluster-pool-ipv6-cidr": v6, "enable-ipv4": en4, "enable-ipv6": en6})
		cidrs, gotMode, err := CiliumCIDRs(cm)
		if err == nil && (gotMode == "cluster-pool" || gotMode == "cluster-pool-v2beta") && len(cidrs) == 0 {
			t.Fatal("cluster-pool mode without CIDRs and without error")
		}
	})
}
