// Package assignment is the contract between the admission webhook and the
// node: the berth.io pod annotations, and the assignment the webhook writes
// into berth.io/assignment and into each Multus selection element's cni-args,
// which berth-ipam and berth-coordinator read back.
package assignment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// Pod annotations read by the shipped policies (inputs).
const (
	IPPoolAnnotation          = "berth.io/ippool"
	IPPoolsAnnotation         = "berth.io/ippools"
	StaticIPsAnnotation       = "berth.io/static-ips"
	DefaultRouteNICAnnotation = "berth.io/default-route-nic"
)

// Namespace annotations read by the shipped policies (inputs).
const (
	DefaultNetworksAnnotation = "berth.io/default-networks"
	DefaultIPPoolsAnnotation  = "berth.io/default-ippools"
)

// Pod annotations written only by the webhook (outputs).
const (
	// Annotation holds the Assignment as JSON.
	Annotation = "berth.io/assignment"
	// PolicyAnnotation lists the policies that decided, for audit.
	PolicyAnnotation = "berth.io/policy"
	// CNIArgsKey is the key of an Interface in a selection element's
	// cni-args, which Multus hands to the plugins as args.cni.
	CNIArgsKey = "berth.io/assignment"
)

// Assignment is what a pod was given at admission, per interface.
type Assignment struct {
	Interfaces []Interface `json:"interfaces"`
}

// Interface is the assignment of one pod interface.
type Interface struct {
	// Interface is the name in the pod, e.g. net1 (eth0 for a default
	// network attachment).
	Interface string `json:"interface"`
	// Network is the Network (and NetworkAttachmentDefinition) as
	// namespace/name.
	Network string `json:"network"`
	// Addresses holds at most one address per IP family.
	Addresses []Address `json:"addresses,omitempty"`
	Routes    []Route   `json:"routes,omitempty"`
	DNS       *DNS      `json:"dns,omitempty"`
	MAC       string    `json:"mac,omitempty"`
	// DefaultRoute makes this interface carry the pod's default route.
	DefaultRoute bool `json:"defaultRoute,omitempty"`
}

// Address is one reserved address with where it came from.
type Address struct {
	// Address is in CIDR form with the pool's prefix length: 10.6.212.101/16.
	Address string `json:"address"`
	// Gateway is the pool's gateway, if it has one.
	Gateway string `json:"gateway,omitempty"`
	// Pool and Allocation name the IPPool and the IPAllocation holding it.
	Pool       string `json:"pool"`
	Allocation string `json:"allocation"`
}

// Route is a route for the interface; an empty GW means the address's gateway.
type Route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// DNS is the resolver configuration of the interface.
type DNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Parse decodes and validates the value of the berth.io/assignment
// annotation. Errors name the field at fault.
func Parse(value string) (*Assignment, error) {
	a := &Assignment{}
	if err := decodeStrict([]byte(value), a); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", Annotation, err)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", Annotation, err)
	}
	return a, nil
}

// ParseInterface decodes and validates one Interface, as found in args.cni.
func ParseInterface(raw []byte) (*Interface, error) {
	i := &Interface{}
	if err := decodeStrict(raw, i); err != nil {
		return nil, err
	}
	if err := i.Validate(""); err != nil {
		return nil, err
	}
	return i, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not valid JSON of the expected shape: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// Marshal returns the annotation value.
func (a *Assignment) Marshal() (string, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encoding assignment: %w", err)
	}
	return string(data), nil
}

// Lookup returns the assignment of interface name.
func (a *Assignment) Lookup(name string) (*Interface, bool) {
	for i := range a.Interfaces {
		if a.Interfaces[i].Interface == name {
			return &a.Interfaces[i], true
		}
	}
	return nil, false
}

// Validate checks every field; the error names the first one at fault.
func (a *Assignment) Validate() error {
	seen := map[string]bool{}
	defaults := 0
	for i := range a.Interfaces {
		itf := &a.Interfaces[i]
		if err := itf.Validate(fmt.Sprintf("interfaces[%d].", i)); err != nil {
			return err
		}
		if seen[itf.Interface] {
			return fmt.Errorf("interfaces[%d].interface: %q appears twice", i, itf.Interface)
		}
		seen[itf.Interface] = true
		if itf.DefaultRoute {
			defaults++
		}
	}
	if defaults > 1 {
		return fmt.Errorf("interfaces: %d interfaces carry the default route, at most one may", defaults)
	}
	return nil
}

// Validate checks the interface; path prefixes field names in errors.
func (i *Interface) Validate(path string) error {
	if err := nadv1.ValidateInterfaceName(i.Interface); err != nil {
		return fmt.Errorf("%sinterface: %w", path, err)
	}
	if i.Network == "" {
		return fmt.Errorf("%snetwork: must be namespace/name", path)
	}
	families := map[bool]bool{}
	for j, addr := range i.Addresses {
		p := fmt.Sprintf("%saddresses[%d].", path, j)
		prefix, err := netip.ParsePrefix(addr.Address)
		if err != nil {
			return fmt.Errorf("%saddress: %q is not an address in CIDR form", p, addr.Address)
		}
		v4 := prefix.Addr().Is4()
		if families[v4] {
			return fmt.Errorf("%saddress: a second address of the same IP family", p)
		}
		families[v4] = true
		if addr.Gateway != "" {
			gw, err := netip.ParseAddr(addr.Gateway)
			if err != nil {
				return fmt.Errorf("%sgateway: %q is not an IP address", p, addr.Gateway)
			}
			if gw.Is4() != v4 {
				return fmt.Errorf("%sgateway: %s is not of the family of %s", p, addr.Gateway, addr.Address)
			}
		}
		if addr.Pool == "" {
			return fmt.Errorf("%spool: must not be empty", p)
		}
	}
	for j, r := range i.Routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			return fmt.Errorf("%sroutes[%d].dst: %q is not a CIDR", path, j, r.Dst)
		}
		if r.GW != "" {
			gw, err := netip.ParseAddr(r.GW)
			if err != nil {
				return fmt.Errorf("%sroutes[%d].gw: %q is not an IP address", path, j, r.GW)
			}
			if gw.Is4() != dst.Addr().Is4() {
				return fmt.Errorf("%sroutes[%d].gw: %s is not of the family of %s", path, j, r.GW, r.Dst)
			}
		}
	}
	if i.DNS != nil {
		for j, ns := range i.DNS.Nameservers {
			if _, err := netip.ParseAddr(ns); err != nil {
				return fmt.Errorf("%sdns.nameservers[%d]: %q is not an IP address", path, j, ns)
			}
		}
	}
	if i.MAC != "" {
		if _, err := net.ParseMAC(i.MAC); err != nil {
			return fmt.Errorf("%smac: %q is not a MAC address", path, i.MAC)
		}
	}
	return nil
}
