package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// MaxVFIndex is the largest VF index a PCIe device can have (TotalVFs is a
// 16-bit field).
const MaxVFIndex = 65535

// Load reads and parses the configuration file at path.
func Load(path, defaultPrefix string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading device plugin configuration: %w", err)
	}
	cfg, err := Parse(data, defaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a resource list in JSON or YAML and validates it. Entries
// without resourcePrefix get defaultPrefix. The error names the first entry
// and field found wrong, e.g.
//
//	resourceList[1] (resourceName "dpdk"): selectors.pfNames[0] "ens1#3-1": VF range 3-1 ends before it starts
func Parse(data []byte, defaultPrefix string) (*Config, error) {
	if msgs := validatePrefix(defaultPrefix); msgs != "" {
		return nil, fmt.Errorf("default resource prefix %q: %s", defaultPrefix, msgs)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("configuration is empty: it needs a resourceList")
	}
	// YAML is a superset of JSON: one path for both keeps their behaviour equal.
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("configuration is neither JSON nor YAML: %w", err)
	}
	top, err := object(js, "configuration")
	if err != nil {
		return nil, err
	}
	if err := knownFields(top, "", topFields, nil); err != nil {
		return nil, err
	}
	raw, ok := top["resourceList"]
	if !ok {
		return nil, errors.New("resourceList: required")
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil || entries == nil {
		return nil, errors.New("resourceList: must be a list of resources")
	}
	cfg := &Config{Resources: make([]Resource, 0, len(entries))}
	seen := map[string]int{}
	for i, e := range entries {
		r, err := parseResource(i, e, defaultPrefix)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[r.FullName()]; dup {
			return nil, fmt.Errorf("%s: resource %s is already defined by resourceList[%d]; put both selectors in one entry's selectors list", r.where(), r.FullName(), prev)
		}
		seen[r.FullName()] = i
		cfg.Resources = append(cfg.Resources, r)
	}
	return cfg, nil
}

var (
	topFields      = []string{"resourceList"}
	resourceFields = []string{"resourceName", "resourcePrefix", "deviceType", "excludeTopology", "selectors"}
	selectorFields = []string{"vendors", "devices", "drivers", "pfNames", "rootDevices", "pciAddresses", "linkTypes", "isRdma"}
	// Fields of the SR-IOV network device plugin that Berth does not
	// implement: named as such, so a migrating user knows it is not a typo.
	unsupportedResourceFields = []string{"additionalInfo"}
	unsupportedSelectorFields = []string{"ddpProfiles", "needVhostNet", "vdpaType", "auxTypes", "acpiIndexes", "pKeys"}
	unsupportedDeviceTypes    = []string{"accelerator", "auxNetDevice"}
)

// where names an entry in messages.
func (r Resource) where() string {
	if r.Name == "" {
		return fmt.Sprintf("resourceList[%d]", r.Index)
	}
	return fmt.Sprintf("resourceList[%d] (resourceName %q)", r.Index, r.Name)
}

func parseResource(i int, raw json.RawMessage, defaultPrefix string) (Resource, error) {
	r := Resource{Index: i, Prefix: defaultPrefix, DeviceType: NetDevice}
	fields, err := object(raw, r.where())
	if err != nil {
		return r, err
	}
	// The name first, so every later message can carry it.
	if v, ok := fields["resourceName"]; ok {
		if err := str(v, &r.Name); err != nil {
			return r, fmt.Errorf("%s: resourceName: %w", r.where(), err)
		}
	}
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", r.where(), field, fmt.Sprintf(format, args...))
	}
	if err := knownFields(fields, r.where()+": ", resourceFields, unsupportedResourceFields); err != nil {
		return r, err
	}
	if r.Name == "" {
		return r, fail("resourceName", "required")
	}
	if msg := validateName(r.Name); msg != "" {
		return r, fail("resourceName", "%s", msg)
	}
	if v, ok := fields["resourcePrefix"]; ok {
		if err := str(v, &r.Prefix); err != nil {
			return r, fail("resourcePrefix", "%v", err)
		}
		if msg := validatePrefix(r.Prefix); msg != "" {
			return r, fail("resourcePrefix", "%q: %s", r.Prefix, msg)
		}
	}
	if v, ok := fields["deviceType"]; ok {
		var t string
		if err := str(v, &t); err != nil {
			return r, fail("deviceType", "%v", err)
		}
		switch {
		case strings.EqualFold(t, string(NetDevice)):
			r.DeviceType = NetDevice
		case t == string(VFIOPCI):
			r.DeviceType = VFIOPCI
		case slices.Contains(unsupportedDeviceTypes, t):
			return r, fail("deviceType", "%q is not supported by berth-sriov-dp (netDevice or vfio-pci)", t)
		default:
			return r, fail("deviceType", "unknown device type %q (netDevice or vfio-pci)", t)
		}
	}
	if v, ok := fields["excludeTopology"]; ok {
		if err := json.Unmarshal(v, &r.ExcludeTopology); err != nil {
			return r, fail("excludeTopology", "must be true or false")
		}
	}
	v, ok := fields["selectors"]
	if !ok {
		return r, fail("selectors", "required (an empty object {} selects every VF)")
	}
	// One selector object, or a list of alternatives (as the SR-IOV network
	// device plugin accepts since it merges several node policies).
	var list []json.RawMessage
	t := bytes.TrimSpace(v)
	isList := len(t) > 0 && t[0] == '['
	switch {
	case isList:
		if err := json.Unmarshal(t, &list); err != nil {
			return r, fail("selectors", "must be an object or a list of objects")
		}
		if len(list) == 0 {
			return r, fail("selectors", "the list is empty (an empty object {} selects every VF)")
		}
	default:
		list = []json.RawMessage{t}
	}
	for j, sv := range list {
		field := "selectors"
		if isList {
			field = fmt.Sprintf("selectors[%d]", j)
		}
		s, err := parseSelector(sv, r, field)
		if err != nil {
			return r, err
		}
		r.Selectors = append(r.Selectors, s)
	}
	return r, nil
}

func parseSelector(raw json.RawMessage, r Resource, field string) (Selector, error) {
	var s Selector
	prefix := r.where() + ": " + field
	fields, err := object(raw, prefix)
	if err != nil {
		return s, err
	}
	if err := knownFields(fields, prefix+".", selectorFields, unsupportedSelectorFields); err != nil {
		return s, err
	}
	fail := func(name string, format string, args ...any) error {
		return fmt.Errorf("%s.%s: %s", prefix, name, fmt.Sprintf(format, args...))
	}
	strs := func(name string, check func(string) (string, error)) ([]string, error) {
		v, ok := fields[name]
		if !ok {
			return nil, nil
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, fail(name, "must be a list of strings")
		}
		if len(list) == 0 {
			return nil, fail(name, "the list is empty: leave the selector out to match every VF")
		}
		out := make([]string, len(list))
		for k, item := range list {
			norm, err := check(item)
			if err != nil {
				return nil, fail(fmt.Sprintf("%s[%d]", name, k), "%q: %v", item, err)
			}
			out[k] = norm
		}
		return out, nil
	}
	if s.Vendors, err = strs("vendors", pciID); err != nil {
		return s, err
	}
	if s.Devices, err = strs("devices", pciID); err != nil {
		return s, err
	}
	if s.Drivers, err = strs("drivers", driverName); err != nil {
		return s, err
	}
	if s.PCIAddresses, err = strs("pciAddresses", pciAddress); err != nil {
		return s, err
	}
	if s.LinkTypes, err = strs("linkTypes", linkType); err != nil {
		return s, err
	}
	pfNames, err := strs("pfNames", func(v string) (string, error) { _, err := ParseDeviceRef(v, ifName); return v, err })
	if err != nil {
		return s, err
	}
	for _, v := range pfNames {
		ref, _ := ParseDeviceRef(v, ifName)
		s.PFNames = append(s.PFNames, ref)
	}
	roots, err := strs("rootDevices", func(v string) (string, error) {
		ref, err := ParseDeviceRef(v, pciAddress)
		return ref.String(), err
	})
	if err != nil {
		return s, err
	}
	for _, v := range roots {
		ref, _ := ParseDeviceRef(v, pciAddress)
		s.RootDevices = append(s.RootDevices, ref)
	}
	if v, ok := fields["isRdma"]; ok {
		if err := json.Unmarshal(v, &s.IsRdma); err != nil {
			return s, fail("isRdma", "must be true or false")
		}
	}
	if r.DeviceType == VFIOPCI {
		if len(s.Drivers) > 0 && !slices.Contains(s.Drivers, VFIODriver) {
			return s, fail("drivers", "deviceType vfio-pci selects only VFs bound to vfio-pci, but drivers lists %v", s.Drivers)
		}
		if s.IsRdma {
			return s, fail("isRdma", "RDMA needs a kernel network driver, not deviceType vfio-pci")
		}
	}
	return s, nil
}

// ParseDeviceRef parses "name" or "name#0-3,5": a PF and, after '#', the
// indexes of its VFs. checkName validates and normalizes the name part.
func ParseDeviceRef(v string, checkName func(string) (string, error)) (DeviceRef, error) {
	name, ranges, hasRanges := strings.Cut(v, "#")
	n, err := checkName(name)
	if err != nil {
		return DeviceRef{}, err
	}
	ref := DeviceRef{Name: n}
	if !hasRanges {
		return ref, nil
	}
	if ranges == "" {
		return DeviceRef{}, errors.New("nothing after '#': write VF indexes like #0-3,5")
	}
	for _, part := range strings.Split(ranges, ",") {
		first, last, isRange := strings.Cut(part, "-")
		lo, err := vfIndex(first)
		if err != nil {
			return DeviceRef{}, err
		}
		hi := lo
		if isRange {
			if hi, err = vfIndex(last); err != nil {
				return DeviceRef{}, err
			}
			if hi < lo {
				return DeviceRef{}, fmt.Errorf("VF range %s ends before it starts", part)
			}
		}
		ref.VFs = append(ref.VFs, VFRange{First: lo, Last: hi})
	}
	return ref, nil
}

func vfIndex(s string) (int, error) {
	// Atoi alone would take "+1" and " 1".
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("VF index %q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > MaxVFIndex {
		return 0, fmt.Errorf("VF index %s is above %d", s, MaxVFIndex)
	}
	return n, nil
}

var (
	hexID   = regexp.MustCompile(`^[0-9a-f]{4}$`)
	pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$`)
	// A resource name is the name part of a Kubernetes qualified name.
	resourceName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

func pciID(v string) (string, error) {
	id := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X"))
	if !hexID.MatchString(id) {
		return "", errors.New("not a PCI ID: want four hex digits like 8086")
	}
	return id, nil
}

func pciAddress(v string) (string, error) {
	a := strings.ToLower(v)
	if !pciAddr.MatchString(a) {
		return "", errors.New("not a PCI address: want domain:bus:device.function like 0000:86:00.0")
	}
	return a, nil
}

func driverName(v string) (string, error) {
	if v == "" || strings.ContainsAny(v, "/ \t\n") {
		return "", errors.New("not a kernel driver name")
	}
	return v, nil
}

func ifName(v string) (string, error) {
	// The kernel's dev_valid_name: at most 15 bytes, no '/', ':' or space.
	if v == "" || len(v) > 15 || v == "." || v == ".." || strings.ContainsAny(v, "/: \t\n") {
		return "", errors.New("not a network interface name (1 to 15 characters, no '/', ':' or space)")
	}
	return v, nil
}

func linkType(v string) (string, error) {
	switch v {
	case LinkTypeEther, LinkTypeInfiniband:
		return v, nil
	}
	return "", fmt.Errorf("unknown link type (%s or %s)", LinkTypeEther, LinkTypeInfiniband)
}

func validateName(n string) string {
	if len(n) > 63 {
		return fmt.Sprintf("%q is longer than 63 characters", n)
	}
	if !resourceName.MatchString(n) {
		return fmt.Sprintf("%q: letters, digits, '-', '_' and '.', starting and ending with a letter or digit", n)
	}
	return ""
}

func validatePrefix(p string) string {
	if p == "" {
		return "empty"
	}
	if msgs := validation.IsDNS1123Subdomain(p); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	// The kubelet treats names under kubernetes.io as native resources and
	// refuses to register them.
	if p == "kubernetes.io" || strings.HasSuffix(p, ".kubernetes.io") || strings.HasSuffix(p, "-kubernetes.io") {
		return "the kubernetes.io domain is reserved for native resources"
	}
	return ""
}

// object decodes raw as a JSON object with its fields kept raw.
func object(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: must be an object", what)
	}
	return m, nil
}

// knownFields refuses fields outside known, naming the ones of the SR-IOV
// network device plugin Berth leaves out, and suggesting the right case.
func knownFields(m map[string]json.RawMessage, prefix string, known, unsupported []string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same on every run
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		if slices.Contains(unsupported, k) {
			return fmt.Errorf("%s%s: not supported by berth-sriov-dp", prefix, k)
		}
		for _, want := range known {
			if strings.EqualFold(k, want) {
				return fmt.Errorf("%s%s: unknown field (did you mean %s?)", prefix, k, want)
			}
		}
		return fmt.Errorf("%s%s: unknown field (known: %s)", prefix, k, strings.Join(known, ", "))
	}
	return nil
}

func str(raw json.RawMessage, out *string) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return errors.New("must be a string")
	}
	return nil
}
