package policies

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// DefaultInterface is the pod's first interface; an attachment on it
// replaces the cluster default network.
const DefaultInterface = "eth0"

// RequestedNetworksOf lists the networks pod asks for in its Multus
// annotations, named as Multus will name their interfaces: eth0 for
// v1.multus-cni.io/default-network, then each element of
// k8s.v1.cni.cncf.io/networks with its requested interface or net<N>, N its
// position from 1. Errors name the annotation and the element at fault.
func RequestedNetworksOf(pod *corev1.Pod) ([]RequestedNetwork, error) {
	var out []RequestedNetwork
	if value, ok := pod.Annotations[nadv1.DefaultNetworkAnnotation]; ok {
		elems, err := nadv1.ParseNetworkSelection(value, pod.Namespace)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", nadv1.DefaultNetworkAnnotation, err)
		}
		if len(elems) != 1 {
			return nil, fmt.Errorf("annotation %s: must name exactly one network, not %d", nadv1.DefaultNetworkAnnotation, len(elems))
		}
		if e := elems[0]; e.InterfaceRequest != "" && e.InterfaceRequest != DefaultInterface {
			return nil, fmt.Errorf("annotation %s: the default network is always %s, not %q", nadv1.DefaultNetworkAnnotation, DefaultInterface, e.InterfaceRequest)
		}
		rn := requested(&elems[0], DefaultInterface)
		rn.Default = true
		out = append(out, rn)
	}
	elems, err := nadv1.ParseNetworkSelection(pod.Annotations[nadv1.NetworksAnnotation], pod.Namespace)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for i := range out {
		seen[out[i].Interface] = -1
	}
	for i := range elems {
		// Multus numbers by position, counting elements that name their
		// interface too.
		iface := elems[i].InterfaceRequest
		if iface == "" {
			iface = "net" + strconv.Itoa(i+1)
		}
		if j, dup := seen[iface]; dup {
			what := "the default network"
			if j >= 0 {
				what = fmt.Sprintf("element %d", j)
			}
			return nil, fmt.Errorf("annotation %s: element %d: interface %q is already %s's", nadv1.NetworksAnnotation, i, iface, what)
		}
		seen[iface] = i
		out = append(out, requested(&elems[i], iface))
	}
	return out, nil
}

func requested(e *nadv1.NetworkSelectionElement, iface string) RequestedNetwork {
	return RequestedNetwork{
		Network:      e.Key(),
		Interface:    iface,
		IPs:          e.IPRequest,
		MAC:          e.MacRequest,
		DefaultRoute: len(e.GatewayRequest) > 0,
	}
}
