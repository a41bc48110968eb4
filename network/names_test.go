package network

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

func TestNamed(t *testing.T) {
	tests := []struct {
		entries []string
		keys    []string
		named   bool
	}{
		{nil, []string{"ns/a"}, false},
		{[]string{"ns/a"}, []string{"ns/a"}, true},
		{[]string{"a"}, []string{"ns/a"}, true},
		{[]string{"other/a"}, []string{"ns/a"}, false},
		{[]string{"b"}, []string{"ns/a", "ns/b"}, true},
		{[]string{"ns/b"}, []string{"ns/a", "ns/b"}, true},
		{[]string{"ns"}, []string{"ns/a"}, false},
	}
	for _, tc := range tests {
		if got := Named(tc.entries, tc.keys...); got != tc.named {
			t.Errorf("Named(%v, %v) = %v, want %v", tc.entries, tc.keys, got, tc.named)
		}
	}
}

func TestKeys(t *testing.T) {
	blue := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blue", Annotations: map[string]string{AnnotationNADName: "blue-nad"}}}
	plain := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}}
	for _, tc := range []struct {
		nad  string
		nw   *berthv1.Network
		want []string
	}{
		{NADKey(blue), blue, []string{"ns/blue-nad", "ns/blue"}},
		{NADKey(plain), plain, []string{"ns/plain"}},
		{"ns/hand-made", nil, []string{"ns/hand-made"}},
		{"ns/old-name", blue, []string{"ns/old-name", "ns/blue"}},
	} {
		if got := Keys(tc.nad, tc.nw); !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%s) = %v, want %v", tc.nad, got, tc.want)
		}
	}
}

func TestNADNetworks(t *testing.T) {
	network := func(ns, name, nadName string) berthv1.Network {
		nw := berthv1.Network{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if nadName != "" {
			nw.Annotations = map[string]string{AnnotationNADName: nadName}
		}
		return nw
	}
	nad := func(ns, name, owner string, controller bool) nadv1.NetworkAttachmentDefinition {
		n := nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if owner != "" {
			ref := metav1.OwnerReference{APIVersion: berthv1.GroupVersion.String(), Kind: "Network", Name: owner, UID: "u"}
			if controller {
				ref.Controller = ptr.To(true)
			}
			n.OwnerReferences = []metav1.OwnerReference{ref}
		}
		return n
	}
	tests := []struct {
		name string
		nets []berthv1.Network
		nads []nadv1.NetworkAttachmentDefinition
		want map[string]string // NAD key -> Network name
	}{{
		name: "a Network under its own name and one under its NAD's, written or not",
		nets: []berthv1.Network{network("a", "plain", ""), network("a", "blue", "blue-nad"), network("b", "blue", "blue-nad")},
		nads: []nadv1.NetworkAttachmentDefinition{nad("a", "blue-nad", "blue", true)},
		want: map[string]string{"a/plain": "a/plain", "a/blue-nad": "a/blue", "b/blue-nad": "b/blue"},
	}, {
		name: "a NAD of its own is not a Network's",
		nads: []nadv1.NetworkAttachmentDefinition{nad("a", "mine", "", false), nad("a", "gone", "deleted", true)},
		want: map[string]string{},
	}, {
		name: "an old NAD the Network still controls, with or without the controller flag",
		nets: []berthv1.Network{network("a", "blue", "blue-nad")},
		nads: []nadv1.NetworkAttachmentDefinition{nad("a", "blue", "blue", true), nad("a", "older", "blue", false)},
		want: map[string]string{"a/blue-nad": "a/blue", "a/blue": "a/blue", "a/older": "a/blue"},
	}, {
		name: "two Networks generating one name: the first by name",
		nets: []berthv1.Network{network("a", "y", "shared"), network("a", "x", "shared")},
		want: map[string]string{"a/shared": "a/x"},
	}, {
		name: "two Networks generating one name: the one controlling the NAD",
		nets: []berthv1.Network{network("a", "x", "shared"), network("a", "y", "shared")},
		nads: []nadv1.NetworkAttachmentDefinition{nad("a", "shared", "y", true)},
		want: map[string]string{"a/shared": "a/y"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for k, nw := range NADNetworks(tc.nets, tc.nads) {
				got[k] = nw.Namespace + "/" + nw.Name
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", fmt.Sprint(got), fmt.Sprint(tc.want))
			}
		})
	}
}
