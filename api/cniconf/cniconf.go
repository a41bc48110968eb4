// Package cniconf is the contract between the Network controller, which
// writes NetworkAttachmentDefinitions, and the CNI plugins, which read them:
// the plugin configuration of berth-ipam and of berth-coordinator, with the
// defaults the plugins apply and the validation they run.
package cniconf

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// Plugin type names as they appear in "type" and as binaries in /opt/cni/bin.
const (
	IPAMType        = "berth-ipam"
	CoordinatorType = "berth-coordinator"
)

// Keys of args.cni (the Multus cni-args of a selection element) that the
// plugins read.
const (
	// ArgsAssignmentKey holds the interface's assignment.Interface as a JSON
	// object (the same key as assignment.CNIArgsKey).
	ArgsAssignmentKey = "berth.io/assignment"
	// ArgsDefaultRouteNICKey names the pod interface that carries the
	// default route, as a string.
	ArgsDefaultRouteNICKey = "berth.io/default-route-nic"
)

// Defaults applied when a field is absent.
const (
	DefaultAPITimeout              = 10 * time.Second
	DefaultHostRuleTable           = 500
	DefaultVethLinkAddress         = "169.254.200.1"
	DefaultDetectGatewayTimeout    = 2 * time.Second
	DefaultDetectIPConflictTimeout = 300 * time.Millisecond
)

// IPAMConfig is the "ipam" section of a main plugin's configuration.
type IPAMConfig struct {
	Type string `json:"type"`
	// Kubeconfig is read only when the assignment did not arrive in args.cni
	// or the ips capability (not called through Multus): then berth-ipam
	// GETs the pod once.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// APITimeout bounds that GET (Go duration, default 10s).
	APITimeout string `json:"apiTimeout,omitempty"`
	// Pools carries what berth-ipam needs to complete addresses that arrive
	// through the "ips" runtimeConfig capability (which has no gateway,
	// routes or DNS): the data of the Network's pools.
	Pools []PoolData `json:"pools,omitempty"`
}

// PoolData is the node's copy of an IPPool's routing data.
type PoolData struct {
	Name    string        `json:"name"`
	Subnet  string        `json:"subnet"`
	Gateway string        `json:"gateway,omitempty"`
	Routes  []types.Route `json:"routes,omitempty"`
	DNS     *types.DNS    `json:"dns,omitempty"`
}

// Validate checks the section; errors name the field under "ipam".
func (c *IPAMConfig) Validate() error {
	if c.Type != IPAMType {
		return fmt.Errorf("ipam.type: %q, expected %q", c.Type, IPAMType)
	}
	if _, err := parseDuration(c.APITimeout, DefaultAPITimeout); err != nil {
		return fmt.Errorf("ipam.apiTimeout: %w", err)
	}
	names := map[string]bool{}
	for i := range c.Pools {
		if err := c.Pools[i].validate(); err != nil {
			return fmt.Errorf("ipam.pools[%d].%w", i, err)
		}
		if names[c.Pools[i].Name] {
			return fmt.Errorf("ipam.pools[%d].name: %q appears twice", i, c.Pools[i].Name)
		}
		names[c.Pools[i].Name] = true
	}
	return nil
}

// Timeout is APITimeout parsed, or its default. Call after Validate.
func (c *IPAMConfig) Timeout() time.Duration {
	d, _ := parseDuration(c.APITimeout, DefaultAPITimeout)
	return d
}

func (p *PoolData) validate() error {
	if p.Name == "" {
		return fmt.Errorf("name: must not be empty")
	}
	subnet, err := netip.ParsePrefix(p.Subnet)
	if err != nil {
		return fmt.Errorf("subnet: %q is not a CIDR", p.Subnet)
	}
	if p.Gateway != "" {
		gw, err := netip.ParseAddr(p.Gateway)
		if err != nil {
			return fmt.Errorf("gateway: %q is not an IP address", p.Gateway)
		}
		if !subnet.Contains(gw) {
			return fmt.Errorf("gateway: %s is outside subnet %s", p.Gateway, p.Subnet)
		}
	}
	for j, r := range p.Routes {
		if r.Dst.IP == nil {
			return fmt.Errorf("routes[%d].dst: missing", j)
		}
		if r.GW != nil && (r.GW.To4() == nil) != (r.Dst.IP.To4() == nil) {
			return fmt.Errorf("routes[%d].gw: %s is not of the family of %s", j, r.GW, r.Dst.String())
		}
	}
	return nil
}

// Prefix returns the pool's subnet. Call after Validate.
func (p *PoolData) Prefix() netip.Prefix {
	pfx, _ := netip.ParsePrefix(p.Subnet)
	return pfx.Masked()
}

// CoordinatorConfig is the berth-coordinator plugin's configuration,
// rendered from the Network's coordinator settings merged over the
// Coordinator "default" resource and its detected CIDRs. Absent fields take
// the defaults of Defaults.
type CoordinatorConfig struct {
	types.NetConf

	// Mode is auto (default), underlay, overlay or disabled.
	Mode         string   `json:"mode,omitempty"`
	PodCIDRs     []string `json:"podCIDRs,omitempty"`
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	HijackCIDRs  []string `json:"hijackCIDRs,omitempty"`
	// PodDefaultRouteNIC is used when neither args.cni nor the pod say which
	// interface carries the default route; empty means eth0.
	PodDefaultRouteNIC string `json:"podDefaultRouteNIC,omitempty"`
	// PodMACPrefix (one or two bytes, "0a:1b") makes the interface's MAC the
	// prefix followed by the last bytes of its address (IPv4 if it has one).
	PodMACPrefix string `json:"podMACPrefix,omitempty"`
	// HostRuleTable holds the host's routes to underlay pods (default 500).
	HostRuleTable *int64 `json:"hostRuleTable,omitempty"`
	// PodRPFilter and HostRPFilter set rp_filter (0, 1, 2) in the pod and on
	// the host side of the underlay veth; -1 leaves it alone. Default 0.
	PodRPFilter  *int32 `json:"podRPFilter,omitempty"`
	HostRPFilter *int32 `json:"hostRPFilter,omitempty"`
	// TxQueueLen of the pod interface; 0 leaves the default.
	TxQueueLen       *int32 `json:"txQueueLen,omitempty"`
	DetectGateway    *bool  `json:"detectGateway,omitempty"`
	DetectIPConflict *bool  `json:"detectIPConflict,omitempty"`
	// DetectGatewayTimeout bounds the wait for the gateway's answer (Go
	// duration, default 2s); DetectIPConflictTimeout is how long the plugin
	// listens for another holder of the address (default 300ms): every ADD
	// with conflict detection waits that long.
	DetectGatewayTimeout    string `json:"detectGatewayTimeout,omitempty"`
	DetectIPConflictTimeout string `json:"detectIPConflictTimeout,omitempty"`
	// VethLinkAddress is the IPv4 address of the host side of the underlay
	// veth, the pod's next hop to the host (default 169.254.200.1); the pod
	// side takes the next address.
	VethLinkAddress string `json:"vethLinkAddress,omitempty"`
	// Kubeconfig lets the coordinator read the pod's default-route-nic
	// annotation when called without Multus; through Multus it arrives in
	// args.cni like the assignment.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// APITimeout bounds that GET (Go duration, default 10s).
	APITimeout string `json:"apiTimeout,omitempty"`
}

// Coordinator modes.
const (
	ModeAuto     = "auto"
	ModeUnderlay = "underlay"
	ModeOverlay  = "overlay"
	ModeDisabled = "disabled"
)

// Coordinator is CoordinatorConfig with defaults applied and every field
// parsed: what the plugin acts on.
type Coordinator struct {
	Mode                    string
	PodCIDRs                []netip.Prefix
	ServiceCIDRs            []netip.Prefix
	HijackCIDRs             []netip.Prefix
	PodDefaultRouteNIC      string
	PodMACPrefix            []byte
	HostRuleTable           int
	PodRPFilter             int
	HostRPFilter            int
	TxQueueLen              int
	DetectGateway           bool
	DetectIPConflict        bool
	DetectGatewayTimeout    time.Duration
	DetectIPConflictTimeout time.Duration
	VethLinkAddress         netip.Addr
	Kubeconfig              string
	APITimeout              time.Duration
}

// Resolve validates the configuration and applies the defaults. Errors name
// the field.
func (c *CoordinatorConfig) Resolve() (*Coordinator, error) {
	r := &Coordinator{Mode: c.Mode, Kubeconfig: c.Kubeconfig, HostRuleTable: DefaultHostRuleTable}
	if c.Mode == "" {
		r.Mode = ModeAuto
	} else if err := CheckMode(c.Mode); err != nil {
		return nil, fmt.Errorf("mode: %w", err)
	}
	var err error
	if r.PodCIDRs, err = parseCIDRs("podCIDRs", c.PodCIDRs); err != nil {
		return nil, err
	}
	if r.ServiceCIDRs, err = parseCIDRs("serviceCIDRs", c.ServiceCIDRs); err != nil {
		return nil, err
	}
	if r.HijackCIDRs, err = parseCIDRs("hijackCIDRs", c.HijackCIDRs); err != nil {
		return nil, err
	}
	if err := CheckPodDefaultRouteNIC(c.PodDefaultRouteNIC); err != nil {
		return nil, fmt.Errorf("podDefaultRouteNIC: %w", err)
	}
	r.PodDefaultRouteNIC = c.PodDefaultRouteNIC
	if c.PodMACPrefix != "" {
		if r.PodMACPrefix, err = ParseMACPrefix(c.PodMACPrefix); err != nil {
			return nil, fmt.Errorf("podMACPrefix: %w", err)
		}
	}
	if c.HostRuleTable != nil {
		if err := CheckHostRuleTable(*c.HostRuleTable); err != nil {
			return nil, fmt.Errorf("hostRuleTable: %w", err)
		}
		r.HostRuleTable = int(*c.HostRuleTable)
	}
	if r.PodRPFilter, err = rpFilter("podRPFilter", c.PodRPFilter); err != nil {
		return nil, err
	}
	if r.HostRPFilter, err = rpFilter("hostRPFilter", c.HostRPFilter); err != nil {
		return nil, err
	}
	if c.TxQueueLen != nil {
		if err := CheckTxQueueLen(*c.TxQueueLen); err != nil {
			return nil, fmt.Errorf("txQueueLen: %w", err)
		}
		r.TxQueueLen = int(*c.TxQueueLen)
	}
	r.DetectGateway = c.DetectGateway != nil && *c.DetectGateway
	r.DetectIPConflict = c.DetectIPConflict != nil && *c.DetectIPConflict
	if r.DetectGatewayTimeout, err = parseDuration(c.DetectGatewayTimeout, DefaultDetectGatewayTimeout); err != nil {
		return nil, fmt.Errorf("detectGatewayTimeout: %w", err)
	}
	if r.DetectIPConflictTimeout, err = parseDuration(c.DetectIPConflictTimeout, DefaultDetectIPConflictTimeout); err != nil {
		return nil, fmt.Errorf("detectIPConflictTimeout: %w", err)
	}
	if r.APITimeout, err = parseDuration(c.APITimeout, DefaultAPITimeout); err != nil {
		return nil, fmt.Errorf("apiTimeout: %w", err)
	}
	veth := c.VethLinkAddress
	if veth == "" {
		veth = DefaultVethLinkAddress
	}
	if r.VethLinkAddress, err = ParseVethLinkAddress(veth); err != nil {
		return nil, fmt.Errorf("vethLinkAddress: %w", err)
	}
	return r, nil
}

// The checks of single settings below are Resolve's, exported so that the
// API (network/validate for a Network's spec.coordinator; the CRD's CEL
// rules mirror them) refuses what every pod's ADD would refuse. Their
// errors start with the value and leave the field to the caller.

// CheckMode accepts the modes berth-coordinator knows.
func CheckMode(mode string) error {
	switch mode {
	case ModeAuto, ModeUnderlay, ModeOverlay, ModeDisabled:
		return nil
	}
	return fmt.Errorf("%q is not one of auto, underlay, overlay, disabled", mode)
}

// ParseCIDR parses one entry of podCIDRs, serviceCIDRs or hijackCIDRs.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	return p.Masked(), nil
}

// CheckPodDefaultRouteNIC accepts an interface name the kernel would, or
// "" (not set).
func CheckPodDefaultRouteNIC(name string) error {
	if name == "" {
		return nil
	}
	return nadv1.ValidateInterfaceName(name)
}

// CheckHostRuleTable accepts a routing table of the host for the routes to
// underlay pods. 0 is unspecified and 253-255 are the kernel's default,
// main and local tables: routes to pods there would not be ours to remove,
// and DEL and GC remove what that table holds.
func CheckHostRuleTable(t int64) error {
	if t < 1 || t > 0xFFFFFFFF || (t >= 253 && t <= 255) {
		return fmt.Errorf("%d must be 1 to 4294967295 and not 253, 254 or 255 (the kernel's default, main and local tables)", t)
	}
	return nil
}

// CheckRPFilter accepts an rp_filter value, or -1 (leave it alone).
func CheckRPFilter(v int32) error {
	if v < -1 || v > 2 {
		return fmt.Errorf("%d must be -1 (leave alone), 0, 1 or 2", v)
	}
	return nil
}

// CheckTxQueueLen accepts a transmit queue length; 0 leaves the default.
func CheckTxQueueLen(v int32) error {
	if v < 0 {
		return fmt.Errorf("%d must not be negative", v)
	}
	return nil
}

// ParseVethLinkAddress parses the host side's address of the underlay veth:
// IPv4, since the pod's IPv6 next hop to the host is fe80::1, and followed
// by a unicast address, which the pod side takes.
func ParseVethLinkAddress(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	if next := a.Next(); !next.IsValid() || next.IsMulticast() || next == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, fmt.Errorf("%q leaves no unicast address after it for the pod side of the veth", s)
	}
	return a, nil
}

// ParseMACPrefix parses one or two bytes ("0a" or "0a:1b") that must leave
// the MAC a unicast address: the multicast bit (0x01 of the first byte)
// clear. The locally administered bit (0x02) may be either.
func ParseMACPrefix(s string) ([]byte, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%q is not one or two hex bytes like 0a:1b", s)
	}
	out := make([]byte, 0, 2)
	for _, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 1 {
			return nil, fmt.Errorf("%q is not one or two hex bytes like 0a:1b", s)
		}
		out = append(out, b[0])
	}
	if out[0]&1 != 0 {
		return nil, fmt.Errorf("%q has the multicast bit set in its first byte", s)
	}
	return out, nil
}

func parseCIDRs(field string, in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func rpFilter(field string, v *int32) (int, error) {
	if v == nil {
		return 0, nil
	}
	if err := CheckRPFilter(*v); err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return int(*v), nil
}

func parseDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 500ms or 2s", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}
