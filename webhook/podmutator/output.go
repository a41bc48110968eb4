package podmutator

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-io/berth/allocator"
	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// interfaceAssignment is the assignment of attachment a given its
// reservations (none in a dry run).
func interfaceAssignment(a *attachment, res []allocator.Reservation) assignment.Interface {
	itf := assignment.Interface{Interface: a.iface, Network: a.network, MAC: a.mac, DefaultRoute: a.defaultRoute}
	for _, r := range res {
		addr := assignment.Address{Address: r.Address.String(), Pool: r.Pool, Allocation: r.Allocation}
		if r.Gateway.IsValid() {
			addr.Gateway = r.Gateway.String()
		}
		itf.Addresses = append(itf.Addresses, addr)
		for _, rt := range r.Routes {
			route := assignment.Route{Dst: rt.Dst}
			if rt.GW != nil {
				route.GW = *rt.GW
			}
			itf.Routes = append(itf.Routes, route)
		}
		if r.DNS != nil {
			if itf.DNS == nil {
				itf.DNS = &assignment.DNS{}
			}
			itf.DNS.Nameservers = appendNew(itf.DNS.Nameservers, r.DNS.Nameservers...)
			itf.DNS.Search = appendNew(itf.DNS.Search, r.DNS.Search...)
			itf.DNS.Options = appendNew(itf.DNS.Options, r.DNS.Options...)
			if itf.DNS.Domain == "" {
				itf.DNS.Domain = r.DNS.Domain
			}
		}
	}
	return itf
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

// enrich writes an interface's assignment into its selection element: the
// interface name, the addresses as Multus's "ips", the MAC, the gateways
// as "default-route" when it carries the default route, and the whole
// interface assignment in cni-args, which reaches the plugins as args.cni.
func enrich(e nadv1.NetworkSelectionElement, itf *assignment.Interface, reserved bool) nadv1.NetworkSelectionElement {
	e.InterfaceRequest = itf.Interface
	if itf.MAC != "" {
		e.MacRequest = itf.MAC
	}
	if !reserved {
		return e
	}
	e.IPRequest = nil
	e.GatewayRequest = nil
	for _, addr := range itf.Addresses {
		e.IPRequest = append(e.IPRequest, addr.Address)
		if itf.DefaultRoute && addr.Gateway != "" {
			e.GatewayRequest = append(e.GatewayRequest, addr.Gateway)
		}
	}
	args := make(map[string]any, len(e.CNIArgs)+1)
	for k, v := range e.CNIArgs {
		args[k] = v
	}
	args[assignment.CNIArgsKey] = itf
	e.CNIArgs = args
	return e
}

// passThrough writes into the selection element of an attachment Berth does
// not serve (its NAD has an IPAM of its own) only what the policies decided
// and Multus applies to any plugin: the interface name and the MAC. The
// user's "ips" and "default-route" stay, and no assignment goes to cni-args:
// nothing was reserved, and the network's own IPAM must not be overruled.
func passThrough(e nadv1.NetworkSelectionElement, itf *assignment.Interface) nadv1.NetworkSelectionElement {
	e, _ = stripForged(e)
	e.InterfaceRequest = itf.Interface
	if itf.MAC != "" {
		e.MacRequest = itf.MAC
	}
	return e
}

// stripForged removes a berth.io/assignment the pod's author put in the
// cni-args of an element Berth does not fulfil: berth-ipam must only ever
// read what the webhook wrote.
func stripForged(e nadv1.NetworkSelectionElement) (nadv1.NetworkSelectionElement, bool) {
	if _, ok := e.CNIArgs[assignment.CNIArgsKey]; !ok {
		return e, false
	}
	args := make(map[string]any, len(e.CNIArgs))
	for k, v := range e.CNIArgs {
		if k != assignment.CNIArgsKey {
			args[k] = v
		}
	}
	if len(args) == 0 {
		args = nil
	}
	e.CNIArgs = args
	return e, true
}

// annotationValues computes the values of the networks and default-network
// annotations: requested elements in their order (enriched where Berth
// fulfils them), then the attachments policies added. An empty value means
// the annotation is to be removed; changed says whether the networks
// annotation differs from what the pod asked.
func (p *plan) annotationValues(itfs []assignment.Interface, reserved bool, requestedDefault string) (networks, defaultNet string, changed bool, err error) {
	var list []nadv1.NetworkSelectionElement
	var def *nadv1.NetworkSelectionElement
	for i, e := range p.elems {
		a, idx := p.attachmentIndexOf(i)
		if a == nil {
			stripped, forged := stripForged(e)
			changed = changed || forged
			list = append(list, stripped)
			continue
		}
		changed = true
		out := passThrough(e, &itfs[idx])
		if a.berth {
			out = enrich(e, &itfs[idx], reserved)
		}
		if a.iface == defaultInterface {
			def = &out
			continue
		}
		list = append(list, out)
	}
	for idx, a := range p.attachments {
		if a.elem >= 0 {
			continue
		}
		changed = true
		ns, name, _ := strings.Cut(a.network, "/")
		out := passThrough(nadv1.NetworkSelectionElement{Name: name, Namespace: ns}, &itfs[idx])
		if a.berth {
			out = enrich(out, &itfs[idx], reserved)
		}
		if a.iface == defaultInterface {
			def = &out
			continue
		}
		list = append(list, out)
	}
	if len(list) > 0 {
		data, err := json.Marshal(list)
		if err != nil {
			return "", "", false, fmt.Errorf("encoding annotation %s: %w", nadv1.NetworksAnnotation, err)
		}
		networks = string(data)
	}
	if def != nil {
		// Multus reads an element without a namespace in its own namespace,
		// not the pod's: the namespace is always written.
		data, err := json.Marshal([]nadv1.NetworkSelectionElement{*def})
		if err != nil {
			return "", "", false, fmt.Errorf("encoding annotation %s: %w", nadv1.DefaultNetworkAnnotation, err)
		}
		defaultNet = string(data)
	} else {
		defaultNet = requestedDefault
	}
	return networks, defaultNet, changed, nil
}

func (p *plan) attachmentIndexOf(elem int) (*attachment, int) {
	for i, a := range p.attachments {
		if a.elem == elem {
			return a, i
		}
	}
	return nil, -1
}
