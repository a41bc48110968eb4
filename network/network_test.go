package network

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestNamesAndAnnotations(t *testing.T) {
	nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "storage"}}
	if NADName(nw) != "storage" || CNIVersion(nw) != "" || AdoptsNAD(nw) {
		t.Errorf("defaults: %q %q %v", NADName(nw), CNIVersion(nw), AdoptsNAD(nw))
	}
	nw.Annotations = map[string]string{AnnotationNADName: "other", AnnotationCNIVersion: "0.4.0", AnnotationAdoptNAD: "true"}
	if NADName(nw) != "other" || CNIVersion(nw) != "0.4.0" || !AdoptsNAD(nw) {
		t.Errorf("annotated: %q %q %v", NADName(nw), CNIVersion(nw), AdoptsNAD(nw))
	}
	nw.Annotations[AnnotationAdoptNAD] = "yes"
	if AdoptsNAD(nw) {
		t.Error(`adopt-nad "yes" must not adopt: only "true" does`)
	}
	if !CNIVersionSupported("1.1.0") || CNIVersionSupported("0.2.0") {
		t.Error("supported versions")
	}
	v := SupportedCNIVersions()
	v[0] = "changed"
	if !CNIVersionSupported("0.3.1") {
		t.Error("SupportedCNIVersions handed out its own slice")
	}
}

func TestPools(t *testing.T) {
	nw := &berthv1.Network{Spec: berthv1.NetworkSpec{IPPools: &berthv1.PoolSelection{IPv4: []string{"a", "b"}, IPv6: []string{"c", "a"}}}}
	if got := Pools(nw); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("got %v", got)
	}
	if Pools(&berthv1.Network{}) != nil {
		t.Error("no pools")
	}
	// The Network's lists are not modified.
	if !slices.Equal(nw.Spec.IPPools.IPv4, []string{"a", "b"}) {
		t.Errorf("spec changed: %v", nw.Spec.IPPools.IPv4)
	}
}

func TestNeedsCoordinator(t *testing.T) {
	disabled := ptr.To(berthv1.CoordinatorDisabled)
	overlay := ptr.To(berthv1.CoordinatorOverlay)
	coordDisabled := &berthv1.Coordinator{Spec: berthv1.CoordinatorSpec{CoordinatorSettings: berthv1.CoordinatorSettings{Mode: disabled}}}
	tests := []struct {
		name  string
		net   *berthv1.NetworkCoordinator
		coord *berthv1.Coordinator
		mode  berthv1.CoordinatorMode
		needs bool
	}{
		{"defaults", nil, nil, berthv1.CoordinatorAuto, true},
		{"network disables the plugin", &berthv1.NetworkCoordinator{Disabled: true}, nil, berthv1.CoordinatorAuto, false},
		{"cluster mode disabled", nil, coordDisabled, berthv1.CoordinatorDisabled, false},
		{"network overrides a disabled cluster", &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{Mode: overlay}}, coordDisabled, berthv1.CoordinatorOverlay, true},
		{"network mode disabled", &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{Mode: disabled}}, nil, berthv1.CoordinatorDisabled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nw := &berthv1.Network{Spec: berthv1.NetworkSpec{Coordinator: tc.net}}
			if got := CoordinatorMode(nw, tc.coord); got != tc.mode {
				t.Errorf("mode %q, want %q", got, tc.mode)
			}
			if got := NeedsCoordinator(nw, tc.coord); got != tc.needs {
				t.Errorf("needs %v, want %v", got, tc.needs)
			}
		})
	}
}

func TestServesNetwork(t *testing.T) {
	nw := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "storage"}}
	renamed := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blue", Annotations: map[string]string{AnnotationNADName: "blue-nad"}}}
	tests := []struct {
		nw            *berthv1.Network
		networks      []string
		serves, allow bool
	}{
		{nw, nil, false, true},
		{nw, []string{"storage"}, true, true},
		{nw, []string{"ns/storage"}, true, true},
		{nw, []string{"other/storage", "fast"}, false, false},
		// Pods name the NAD: a pool may name the Network by its NAD's name.
		{renamed, []string{"ns/blue"}, true, true},
		{renamed, []string{"blue"}, true, true},
		{renamed, []string{"ns/blue-nad"}, true, true},
		{renamed, []string{"blue-nad"}, true, true},
		{renamed, []string{"other/blue-nad", "ns/storage"}, false, false},
	}
	for _, tc := range tests {
		p := &berthv1.IPPool{Spec: berthv1.IPPoolSpec{Networks: tc.networks}}
		if ServesNetwork(p, tc.nw) != tc.serves || PoolAllows(p, tc.nw) != tc.allow {
			t.Errorf("%s/%s %v: serves %v allows %v, want %v %v", tc.nw.Namespace, tc.nw.Name, tc.networks, ServesNetwork(p, tc.nw), PoolAllows(p, tc.nw), tc.serves, tc.allow)
		}
	}
}
