// Package coordinator is berth-coordinator, the plugin chained after a pod
// interface's main plugin that makes a pod with underlay interfaces route
// correctly: cluster traffic (pod and service CIDRs, the node) goes where
// kube-proxy and the node can see it, replies leave by the interface their
// request came in on, the default route is on the interface the pod was
// given it for, and the segment is checked (gateway answers, address not
// taken) before ADD succeeds.
//
// Underlay mode (the Berth interface is eth0): a veth pair joins the pod to
// its node; the pod routes the cluster CIDRs and the node's addresses
// through it, and the node routes the pod's addresses back through it from a
// table of its own (hostRuleTable) selected by "to <pod address>" rules.
// Overlay mode (eth0 is the cluster CNI's): the cluster CIDRs and the node's
// addresses are routed via eth0. In both, an interface that does not carry
// the default route gets a routing table of its own (100 + its ifindex)
// with "from <its address>" rules.
package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/cni/internal/k8sargs"
	"github.com/berth-io/berth/cni/internal/podclient"
)

// Names, tables and priorities the coordinator uses; DESIGN.md documents
// them, and DEL finds what ADD made by them.
const (
	// PodVethName is the pod side of the underlay veth.
	PodVethName = "veth0"
	// HostVethPrefix starts the host side's name, followed by a hash of
	// the container ID and interface.
	HostVethPrefix = "bth"
	// NICTableBase plus a pod interface's ifindex is that interface's
	// policy-routing table in the pod.
	NICTableBase = 100
	// PodRulePriority is the priority of the pod's "from <address>" rules.
	PodRulePriority = 1000
	// HostRulePriority is the priority of the host's "to <pod address>"
	// rules.
	HostRulePriority = 1000
	// DefaultNIC is the interface the cluster's CNI gives every pod.
	DefaultNIC = "eth0"
)

// Link-local next hops of the underlay veth for IPv6: fixed, since
// link-local addresses only mean something on their own link.
var (
	hostVethIPv6 = netip.MustParseAddr("fe80::1")
	podVethIPv6  = netip.MustParseAddr("fe80::2")
)

// Versions are the CNI spec versions berth-coordinator speaks; CHECK needs
// 0.4.0 or later.
func Versions() version.PluginInfo {
	return version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0")
}

// About is the VERSION banner.
const About = "berth-coordinator: routes, rules and checks for pods with underlay interfaces"

// Plugin is berth-coordinator.
type Plugin struct {
	// NewGetter builds the pod reader used to learn the default-route
	// interface when neither stdin nor the configuration say; nil means
	// podclient.Kubeconfig.
	NewGetter func(kubeconfig string, timeout time.Duration) podclient.Getter
}

// Funcs are the CNI commands, for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC}
}

type netConf struct {
	cniconf.CoordinatorConfig
	Args *k8sargs.RawArgs `json:"args,omitempty"`
}

// call is one invocation, parsed.
type call struct {
	args    *skel.CmdArgs
	conf    *netConf
	cfg     *cniconf.Coordinator
	pod     k8sargs.Pod
	cniArgs k8sargs.Args
	subject cnierr.Subject
	prev    *current.Result // nil when the runtime passed none
}

func parse(args *skel.CmdArgs) (*call, error) {
	c := &call{args: args, subject: cnierr.Subject{ContainerID: args.ContainerID, IfName: args.IfName}}
	pod, err := k8sargs.ParsePod(args.Args)
	if err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidEnvironmentVariables, c.subject, err)
	}
	c.pod = pod
	c.subject.Namespace, c.subject.Name = pod.Namespace, pod.Name
	conf := &netConf{}
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding the berth-coordinator configuration: %w", err))
	}
	c.conf = conf
	if c.cfg, err = conf.Resolve(); err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("berth-coordinator configuration of network %q: %w", conf.Name, err))
	}
	if c.cniArgs, err = k8sargs.ParseArgs(conf.Args); err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, err)
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding prevResult: %w", err))
	}
	if conf.PrevResult != nil {
		if c.prev, err = current.NewResultFromResult(conf.PrevResult); err != nil {
			return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("converting prevResult: %w", err))
		}
	}
	return c, nil
}

// nic is the pod interface being coordinated, as prevResult describes it.
type nic struct {
	name     string
	addrs    []netip.Prefix // at most one per family
	gateways map[bool]netip.Addr
	ifIndex  int // in prevResult.Interfaces, -1 if absent
}

func (n *nic) addr(v4 bool) (netip.Prefix, bool) {
	for _, a := range n.addrs {
		if a.Addr().Is4() == v4 {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// nicOf reads the interface's addresses and gateways from prevResult.
func nicOf(res *current.Result, ifName string) (*nic, error) {
	n := &nic{name: ifName, gateways: map[bool]netip.Addr{}, ifIndex: -1}
	for i, itf := range res.Interfaces {
		if itf.Name == ifName && itf.Sandbox != "" {
			n.ifIndex = i
		}
	}
	for _, ipc := range res.IPs {
		if ipc.Interface != nil && *ipc.Interface != n.ifIndex {
			continue
		}
		ones, _ := ipc.Address.Mask.Size()
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		p := netip.PrefixFrom(a.Unmap(), ones)
		if _, dup := n.addr(p.Addr().Is4()); dup {
			continue
		}
		n.addrs = append(n.addrs, p)
		if gw, ok := netip.AddrFromSlice(ipc.Gateway); ok && ipc.Gateway != nil {
			n.gateways[p.Addr().Is4()] = gw.Unmap()
		}
	}
	if len(n.addrs) == 0 {
		return nil, fmt.Errorf("prevResult has no address for interface %s: berth-coordinator must follow a main plugin with IPAM", ifName)
	}
	return n, nil
}

// mode resolves auto: underlay when the Berth interface is eth0.
func (c *call) mode() string {
	if c.cfg.Mode == cniconf.ModeAuto {
		if c.args.IfName == DefaultNIC {
			return cniconf.ModeUnderlay
		}
		return cniconf.ModeOverlay
	}
	return c.cfg.Mode
}

// carriesDefault decides whether the interface gets the pod's default
// route: args.cni's default-route-nic, else the assignment's defaultRoute,
// else the configuration's podDefaultRouteNIC, else the pod read from the
// API server (when a kubeconfig is configured), else eth0.
func (p *Plugin) carriesDefault(ctx context.Context, c *call) (bool, error) {
	ifName := c.args.IfName
	switch {
	case c.cniArgs.DefaultRouteNIC != "":
		return c.cniArgs.DefaultRouteNIC == ifName, nil
	case c.cniArgs.Assignment != nil:
		return c.cniArgs.Assignment.DefaultRoute, nil
	case c.cfg.PodDefaultRouteNIC != "":
		return c.cfg.PodDefaultRouteNIC == ifName, nil
	case c.cfg.Kubeconfig != "" && c.pod.Known():
		nic, err := p.defaultNICFromPod(ctx, c)
		if err != nil {
			return false, err
		}
		return nic == ifName, nil
	default:
		return ifName == DefaultNIC, nil
	}
}

func (p *Plugin) defaultNICFromPod(ctx context.Context, c *call) (string, error) {
	newGetter := p.NewGetter
	if newGetter == nil {
		newGetter = func(path string, timeout time.Duration) podclient.Getter {
			return podclient.Kubeconfig{Path: path, Timeout: timeout}
		}
	}
	pod, err := newGetter(c.cfg.Kubeconfig, c.cfg.APITimeout).GetPod(ctx, c.pod.Namespace, c.pod.Name)
	if err != nil {
		return "", cnierr.Wrap(types.ErrTryAgainLater, c.subject, err)
	}
	if c.pod.UID != "" && string(pod.UID) != c.pod.UID {
		return "", cnierr.Wrap(cnierr.PodMismatch, c.subject, fmt.Errorf("the pod read from the API server has uid %s, K8S_POD_UID is %s: not the pod being set up", pod.UID, c.pod.UID))
	}
	if v, ok := pod.Annotations[assignment.Annotation]; ok {
		a, err := assignment.Parse(v)
		if err != nil {
			return "", cnierr.Wrap(types.ErrDecodingFailure, c.subject, err)
		}
		for _, itf := range a.Interfaces {
			if itf.DefaultRoute {
				return itf.Interface, nil
			}
		}
	}
	if v := pod.Annotations[assignment.DefaultRouteNICAnnotation]; v != "" {
		return v, nil
	}
	return DefaultNIC, nil
}

// Add coordinates the interface and passes prevResult on.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.prev == nil {
		return cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("berth-coordinator is a chained plugin and got no prevResult"))
	}
	if c.cfg.Mode == cniconf.ModeDisabled {
		return types.PrintResult(c.prev, c.conf.CNIVersion)
	}
	ctx := context.Background()
	if err := p.add(ctx, c); err != nil {
		return cnierr.Wrap(cnierr.SetupFailed, c.subject, err)
	}
	return types.PrintResult(c.prev, c.conf.CNIVersion)
}

func (p *Plugin) add(ctx context.Context, c *call) (err error) {
	n, err := nicOf(c.prev, c.args.IfName)
	if err != nil {
		return cnierr.Errorf(types.ErrInvalidNetworkConfig, "%w", err)
	}
	isDefault, err := p.carriesDefault(ctx, c)
	if err != nil {
		return err
	}
	podNS, err := ns.GetNS(c.args.Netns)
	if err != nil {
		return cnierr.Errorf(types.ErrInvalidNetNS, "opening netns %s: %w", c.args.Netns, err)
	}
	defer podNS.Close()
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("opening the host netns: %w", err)
	}
	defer hostNS.Close()

	u := &undo{}
	defer func() {
		if err != nil {
			if uerr := u.run(); uerr != nil {
				err = fmt.Errorf("%w (and undoing: %v)", err, uerr)
			}
		}
	}()
	s := &setup{c: c, nic: n, podNS: podNS, hostNS: hostNS, undo: u, isDefault: isDefault, mode: c.mode()}
	if err := s.prepareNIC(ctx); err != nil {
		return err
	}
	if s.mode == cniconf.ModeUnderlay && n.name == DefaultNIC {
		if err := s.underlayVeth(); err != nil {
			return err
		}
	}
	if s.mode == cniconf.ModeOverlay && n.name != DefaultNIC {
		if err := s.overlayRoutes(); err != nil {
			return err
		}
	}
	if err := s.policyRouting(); err != nil {
		return err
	}
	if s.newMAC != nil && n.ifIndex >= 0 {
		c.prev.Interfaces[n.ifIndex].Mac = s.newMAC.String()
	}
	return nil
}

// Del removes what ADD made: on the host the veth, its routes and rules;
// in the pod (when the netns still exists) the interface's table and rules.
// A missing netns, link, route or rule is not an error.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.cfg.Mode == cniconf.ModeDisabled {
		return nil
	}
	if err := teardown(c); err != nil {
		return cnierr.Wrap(cnierr.SetupFailed, c.subject, err)
	}
	return nil
}

// Check verifies that what ADD made is still there.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.prev == nil {
		return cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("CHECK needs prevResult"))
	}
	if c.cfg.Mode == cniconf.ModeDisabled {
		return nil
	}
	n, err := nicOf(c.prev, args.IfName)
	if err != nil {
		return cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, err)
	}
	isDefault, err := p.carriesDefault(context.Background(), c)
	if err != nil {
		return err
	}
	if err := check(c, n, isDefault); err != nil {
		return cnierr.Wrap(cnierr.CheckFailed, c.subject, err)
	}
	return nil
}

// hostVethName is the host side of the pod's underlay veth: derived from
// the container and interface so DEL finds it without state.
func hostVethName(containerID, ifName string) string {
	return HostVethPrefix + shortHash(containerID+"/"+ifName, 12)
}

// warn reports on stderr, which runtimes log, what does not fail ADD.
func warn(msg string) {
	fmt.Fprintf(os.Stderr, "berth-coordinator: %s\n", msg)
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
