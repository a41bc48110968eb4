package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NetworkSelectionElement is one entry of the k8s.v1.cni.cncf.io/networks
// annotation in its JSON form.
//
// +kubebuilder:object:generate=false
type NetworkSelectionElement struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// IPRequest are addresses in CIDR form, passed as runtimeConfig "ips".
	IPRequest []string `json:"ips,omitempty"`
	// MacRequest is passed as runtimeConfig "mac".
	MacRequest string `json:"mac,omitempty"`
	// InterfaceRequest is the interface name in the pod.
	InterfaceRequest string `json:"interface,omitempty"`
	// GatewayRequest, when set, makes this attachment carry the default route
	// through these gateways.
	GatewayRequest []string `json:"default-route,omitempty"`
	// CNIArgs are passed to the plugins as args.cni.
	CNIArgs map[string]any `json:"cni-args,omitempty"`

	// Fields Berth does not interpret, kept so an enriched annotation loses
	// nothing the user wrote.
	InfinibandGUIDRequest string          `json:"infiniband-guid,omitempty"`
	PortMappingsRequest   json.RawMessage `json:"portMappings,omitempty"`
	BandwidthRequest      json.RawMessage `json:"bandwidth,omitempty"`
	IPAMClaimReference    string          `json:"ipam-claim-reference,omitempty"`

	// Unknown holds the keys of the element this type has no field for, as
	// written. Multus ignores keys it does not know, and newer Multus
	// releases add keys: refusing them would refuse pods Multus accepts, and
	// dropping them when Berth rewrites the annotation would lose what the
	// user asked for. They are written back after the known keys.
	Unknown map[string]json.RawMessage `json:"-"`
}

// selectionElement has the fields of NetworkSelectionElement without its
// JSON methods, so they can use the default encoding for the known keys.
type selectionElement NetworkSelectionElement

// knownKeys are the JSON keys of NetworkSelectionElement's typed fields.
var knownKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(selectionElement{})
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// UnmarshalJSON decodes the known keys strictly into their fields (a known
// key of the wrong type is an error) and keeps every other key in Unknown.
// Keys are matched exactly: "Name" is not "name".
func (e *NetworkSelectionElement) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil // as encoding/json does for a null struct
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	known := map[string]json.RawMessage{}
	var unknown map[string]json.RawMessage
	for k, v := range all {
		if knownKeys[k] {
			known[k] = v
			continue
		}
		if unknown == nil {
			unknown = map[string]json.RawMessage{}
		}
		unknown[k] = v
	}
	buf, err := json.Marshal(known)
	if err != nil {
		return err
	}
	var out selectionElement
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return err
	}
	out.Unknown = unknown
	*e = NetworkSelectionElement(out)
	return nil
}

// MarshalJSON writes the known keys in field order, then the unknown ones
// sorted by key. An unknown key that collides with a known one (possible
// only when Unknown is filled by hand) is left out: the field wins.
func (e NetworkSelectionElement) MarshalJSON() ([]byte, error) {
	known, err := json.Marshal(selectionElement(e))
	if err != nil {
		return nil, err
	}
	if len(e.Unknown) == 0 {
		return known, nil
	}
	keys := make([]string, 0, len(e.Unknown))
	for k := range e.Unknown {
		if !knownKeys[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.Write(known[:len(known)-1]) // without the closing brace
	for _, k := range keys {
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		var vb bytes.Buffer
		if err := json.Compact(&vb, e.Unknown[k]); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb.Bytes())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ParseNetworkSelection parses the value of the networks annotation of a pod
// in namespace podNamespace: either a JSON list of selection elements or the
// short form "[namespace/]name[@interface], ...". Elements without a
// namespace get podNamespace. Errors name the element at fault.
func ParseNetworkSelection(value, podNamespace string) ([]NetworkSelectionElement, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	var elems []NetworkSelectionElement
	if strings.HasPrefix(value, "[") {
		// Unknown keys of an element are kept (NetworkSelectionElement's
		// UnmarshalJSON), as Multus accepts them.
		dec := json.NewDecoder(strings.NewReader(value))
		if err := dec.Decode(&elems); err != nil {
			return nil, fmt.Errorf("annotation %s: not a JSON list of network selection elements: %w", NetworksAnnotation, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("annotation %s: unexpected data after the JSON list", NetworksAnnotation)
		}
	} else {
		for i, item := range strings.Split(value, ",") {
			e, err := parseShortForm(strings.TrimSpace(item))
			if err != nil {
				return nil, fmt.Errorf("annotation %s: element %d %q: %w", NetworksAnnotation, i, item, err)
			}
			elems = append(elems, e)
		}
	}
	for i := range elems {
		if elems[i].Namespace == "" {
			elems[i].Namespace = podNamespace
		}
		if err := elems[i].Validate(); err != nil {
			return nil, fmt.Errorf("annotation %s: element %d: %w", NetworksAnnotation, i, err)
		}
	}
	return elems, nil
}

func parseShortForm(item string) (NetworkSelectionElement, error) {
	var e NetworkSelectionElement
	if item == "" {
		return e, fmt.Errorf("empty network name")
	}
	rest := item
	if ns, name, ok := strings.Cut(rest, "/"); ok {
		e.Namespace, rest = ns, name
	}
	if name, iface, ok := strings.Cut(rest, "@"); ok {
		rest, e.InterfaceRequest = name, iface
		if iface == "" {
			return e, fmt.Errorf("empty interface name after @")
		}
	}
	e.Name = rest
	return e, nil
}

// Validate checks the names and the address requests of the element.
func (e *NetworkSelectionElement) Validate() error {
	if msgs := validation.IsDNS1123Subdomain(e.Name); len(msgs) > 0 {
		return fmt.Errorf("name %q: %s", e.Name, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Label(e.Namespace); len(msgs) > 0 {
		return fmt.Errorf("namespace %q of network %q: %s", e.Namespace, e.Name, strings.Join(msgs, "; "))
	}
	if e.InterfaceRequest != "" {
		if err := ValidateInterfaceName(e.InterfaceRequest); err != nil {
			return fmt.Errorf("interface of network %s/%s: %w", e.Namespace, e.Name, err)
		}
	}
	for _, ip := range e.IPRequest {
		if _, err := netip.ParsePrefix(ip); err != nil {
			if _, err2 := netip.ParseAddr(ip); err2 != nil {
				return fmt.Errorf("ips of network %s/%s: %q is neither an address nor a CIDR", e.Namespace, e.Name, ip)
			}
		}
	}
	for _, gw := range e.GatewayRequest {
		if _, err := netip.ParseAddr(gw); err != nil {
			return fmt.Errorf("default-route of network %s/%s: %q is not an IP address", e.Namespace, e.Name, gw)
		}
	}
	return nil
}

// ValidateInterfaceName applies the kernel's rules for a link name.
func ValidateInterfaceName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("%q must be 1 to 15 characters", name)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r <= ' ' || r > '~' {
			return fmt.Errorf("%q contains %q, not allowed in an interface name", name, r)
		}
	}
	return nil
}

// Key is namespace/name of the NetworkAttachmentDefinition the element names.
func (e *NetworkSelectionElement) Key() string { return e.Namespace + "/" + e.Name }
