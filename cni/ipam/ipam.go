// Package ipam is berth-ipam, the IPAM plugin that hands a pod interface the
// addresses, gateway, routes and DNS the admission webhook reserved for it.
// It decides nothing: the assignment comes, in order of preference, from
// args.cni (Multus cni-args, no API call), from the "ips" runtimeConfig
// capability completed by the pool data of its configuration, or from one
// GET of the pod. Without an assignment for the interface it fails; it never
// guesses an address.
package ipam

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/cni/internal/k8sargs"
	"github.com/berth-io/berth/cni/internal/podclient"
)

// Versions are the CNI spec versions berth-ipam speaks.
func Versions() version.PluginInfo {
	return version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0")
}

// About is the VERSION banner.
const About = "berth-ipam: the addresses Berth reserved for the pod at admission"

// Plugin is berth-ipam. The zero value reads pods with the kubeconfig of its
// configuration.
type Plugin struct {
	// NewGetter builds the pod reader used when the assignment did not
	// arrive in stdin; nil means podclient.Kubeconfig.
	NewGetter func(kubeconfig string, timeout time.Duration) podclient.Getter
}

// Funcs are the CNI commands, for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check}
}

// netConf is what berth-ipam reads of the main plugin's configuration.
type netConf struct {
	types.NetConf
	IPAM          cniconf.IPAMConfig `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args *k8sargs.RawArgs `json:"args,omitempty"`
}

// Source says where an assignment came from.
type Source string

const (
	SourceArgs       Source = "args.cni"
	SourceIPs        Source = "runtimeConfig.ips"
	SourceAnnotation Source = "pod annotation " + assignment.Annotation
)

// call is one invocation, parsed.
type call struct {
	conf    *netConf
	pod     k8sargs.Pod
	args    k8sargs.Args
	subject cnierr.Subject
}

func parse(args *skel.CmdArgs) (*call, error) {
	c := &call{subject: cnierr.Subject{ContainerID: args.ContainerID, IfName: args.IfName}}
	pod, err := k8sargs.ParsePod(args.Args)
	if err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidEnvironmentVariables, c.subject, err)
	}
	c.pod = pod
	c.subject.Namespace, c.subject.Name = pod.Namespace, pod.Name
	conf := &netConf{}
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding the network configuration: %w", err))
	}
	if err := conf.IPAM.Validate(); err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("network %q: %w", conf.Name, err))
	}
	c.conf = conf
	if c.args, err = k8sargs.ParseArgs(conf.Args); err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, err)
	}
	return c, nil
}

// Add prints the pre-assigned result for CNI_IFNAME.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	res, _, err := p.resolve(context.Background(), c)
	if err != nil {
		return err
	}
	return types.PrintResult(res, c.conf.CNIVersion)
}

// Check verifies that the addresses in prevResult for CNI_IFNAME are the
// assigned ones.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if err := version.ParsePrevResult(&c.conf.NetConf); err != nil {
		return cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding prevResult: %w", err))
	}
	if c.conf.PrevResult == nil {
		return cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("CHECK needs prevResult"))
	}
	prev, err := current.NewResultFromResult(c.conf.PrevResult)
	if err != nil {
		return cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("converting prevResult: %w", err))
	}
	want, src, err := p.resolve(context.Background(), c)
	if err != nil {
		return err
	}
	got := prefixes(ipsOf(prev, args.IfName))
	if !sameAddresses(got, prefixes(want.IPs)) {
		return cnierr.Wrap(cnierr.CheckFailed, c.subject, fmt.Errorf("prevResult has addresses %v, the assignment (from %s) has %v", got, src, prefixes(want.IPs)))
	}
	return nil
}

// Del has nothing to release: reservations belong to the pod's lifecycle,
// which the controller follows. It still rejects a configuration it cannot
// read, and never reads the pod, so a deleted pod or netns cannot fail it.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	_, err := parse(args)
	return err
}

// ipsOf returns the addresses of prevResult on the container interface
// named ifName; IPs that name no interface count too (IPAM-only results).
func ipsOf(res *current.Result, ifName string) []*current.IPConfig {
	var out []*current.IPConfig
	for _, ipc := range res.IPs {
		if ipc.Interface == nil {
			out = append(out, ipc)
			continue
		}
		i := *ipc.Interface
		if i >= 0 && i < len(res.Interfaces) && res.Interfaces[i].Name == ifName && res.Interfaces[i].Sandbox != "" {
			out = append(out, ipc)
		}
	}
	return out
}

// resolve finds the assignment of the interface and turns it into a result.
func (p *Plugin) resolve(ctx context.Context, c *call) (*current.Result, Source, error) {
	ifName := c.subject.IfName
	ips := c.conf.RuntimeConfig.IPs
	switch {
	case c.args.Assignment != nil:
		itf := c.args.Assignment
		if itf.Interface != ifName {
			return nil, "", cnierr.Wrap(cnierr.NoAssignment, c.subject, fmt.Errorf("args.cni[%q] is the assignment of interface %s, not of %s", cniconf.ArgsAssignmentKey, itf.Interface, ifName))
		}
		res, err := fromAssignment(itf)
		if err != nil {
			return nil, "", cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("args.cni[%q]: %w", cniconf.ArgsAssignmentKey, err))
		}
		if len(ips) > 0 {
			fromCap, err := fromIPs(ips, c.conf.IPAM.Pools)
			if err != nil || !sameAddresses(prefixes(fromCap.IPs), prefixes(res.IPs)) {
				return nil, "", cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("runtimeConfig.ips %v disagree with the addresses of args.cni[%q] %v", ips, cniconf.ArgsAssignmentKey, prefixes(res.IPs)))
			}
		}
		return res, SourceArgs, nil
	case len(ips) > 0:
		res, err := fromIPs(ips, c.conf.IPAM.Pools)
		if err != nil {
			return nil, "", cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, err)
		}
		return res, SourceIPs, nil
	case c.conf.IPAM.Kubeconfig != "":
		itf, err := p.fromPod(ctx, c)
		if err != nil {
			return nil, "", err
		}
		res, err := fromAssignment(itf)
		if err != nil {
			return nil, "", cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("annotation %s: %w", assignment.Annotation, err))
		}
		return res, SourceAnnotation, nil
	default:
		return nil, "", cnierr.Wrap(cnierr.NoAssignment, c.subject, fmt.Errorf("no assignment: args.cni has no %q, runtimeConfig has no ips and ipam.kubeconfig is not set to read the pod", cniconf.ArgsAssignmentKey))
	}
}

// fromPod reads the assignment from the pod with one GET, after checking
// that the pod is the one being set up.
func (p *Plugin) fromPod(ctx context.Context, c *call) (*assignment.Interface, error) {
	if !c.pod.Known() {
		return nil, cnierr.Wrap(types.ErrInvalidEnvironmentVariables, c.subject, fmt.Errorf("CNI_ARGS has no K8S_POD_NAMESPACE and K8S_POD_NAME to read the pod's assignment with"))
	}
	newGetter := p.NewGetter
	if newGetter == nil {
		newGetter = func(path string, timeout time.Duration) podclient.Getter {
			return podclient.Kubeconfig{Path: path, Timeout: timeout}
		}
	}
	pod, err := newGetter(c.conf.IPAM.Kubeconfig, c.conf.IPAM.Timeout()).GetPod(ctx, c.pod.Namespace, c.pod.Name)
	if err != nil {
		return nil, cnierr.Wrap(types.ErrTryAgainLater, c.subject, err)
	}
	if c.pod.UID != "" && string(pod.UID) != c.pod.UID {
		return nil, cnierr.Wrap(cnierr.PodMismatch, c.subject, fmt.Errorf("the pod read from the API server has uid %s, K8S_POD_UID is %s: not the pod being set up", pod.UID, c.pod.UID))
	}
	value, ok := pod.Annotations[assignment.Annotation]
	if !ok {
		return nil, cnierr.Wrap(cnierr.NoAssignment, c.subject, fmt.Errorf("the pod has no %s annotation", assignment.Annotation))
	}
	a, err := assignment.Parse(value)
	if err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, err)
	}
	itf, ok := a.Lookup(c.subject.IfName)
	if !ok {
		return nil, cnierr.Wrap(cnierr.NoAssignment, c.subject, fmt.Errorf("annotation %s has no entry for interface %s", assignment.Annotation, c.subject.IfName))
	}
	return itf, nil
}
