// Package ifacer is berth-ifacer, the chained plugin that goes first in a
// Network's conflist and makes the master its macvlan or ipvlan plugin
// expects exist on the node, as Spiderpool's ifacer does: a bond of the
// configured interfaces and/or the VLAN sub-interface <bond or
// interface>.<vlanID>, brought up.
//
// It works in the node's network namespace, never the pod's. Interfaces
// that already exist as configured are kept; one of the right name but the
// wrong kind, mode, parent or VLAN ID is an error naming it, and is not
// touched. ADDs on a node are serialized by a lock file, and a failed ADD
// undoes what it made. Nothing is ever deleted by DEL: the interfaces serve
// every pod of the Network on the node (and are gone after a reboot until
// the next pod's ADD makes them again). The result is prevResult, or an
// empty result when berth-ifacer is first, so the runtime sees the main
// plugin's.
package ifacer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/cni/cnierr"
	"github.com/berth-io/berth/cni/internal/k8sargs"
)

// Versions are the CNI spec versions berth-ifacer speaks; CHECK needs 0.4.0
// or later.
func Versions() version.PluginInfo {
	return version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0")
}

// About is the VERSION banner.
const About = "berth-ifacer: the bond and VLAN masters of macvlan and ipvlan networks, made on the node"

// Plugin is berth-ifacer. The zero value locks DefaultLockPath.
type Plugin struct {
	// LockPath is the file whose lock serializes ADDs on the node.
	LockPath string
}

// Funcs are the CNI commands, for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check}
}

// call is one invocation, parsed.
type call struct {
	// net holds cniVersion, name and prevResult, read apart from cfg:
	// embedding types.NetConf next to cniconf.IfacerConfig would give two
	// "cniVersion" fields at one depth, which encoding/json then ignores.
	net     types.NetConf
	cfg     cniconf.IfacerConfig
	subject cnierr.Subject
}

// decode reads stdin without judging the configuration, which DEL must not
// do.
func decode(args *skel.CmdArgs) (*call, error) {
	c := &call{subject: cnierr.Subject{ContainerID: args.ContainerID, IfName: args.IfName}}
	// The pod only names the subject of errors: berth-ifacer reads nothing
	// else of CNI_ARGS, so malformed ones are left to the plugins that do.
	if pod, err := k8sargs.ParsePod(args.Args); err == nil {
		c.subject.Namespace, c.subject.Name = pod.Namespace, pod.Name
	}
	if err := json.Unmarshal(args.StdinData, &c.net); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding the %s configuration: %w", cniconf.IfacerType, err))
	}
	if err := json.Unmarshal(args.StdinData, &c.cfg); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding the %s configuration of network %q: %w", cniconf.IfacerType, c.net.Name, err))
	}
	return c, nil
}

// parse is decode and the checks ADD and CHECK start with.
func parse(args *skel.CmdArgs) (*call, error) {
	c, err := decode(args)
	if err != nil {
		return nil, err
	}
	// skel checks this before calling a command; checked again so that a
	// result can always be printed in the version asked for.
	if !slices.Contains(Versions().SupportedVersions(), c.net.CNIVersion) {
		return nil, cnierr.Wrap(types.ErrIncompatibleCNIVersion, c.subject, fmt.Errorf("cniVersion %q is not one of %v", c.net.CNIVersion, Versions().SupportedVersions()))
	}
	if err := c.cfg.Validate(); err != nil {
		return nil, cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, fmt.Errorf("%s configuration of network %q: %w", cniconf.IfacerType, c.net.Name, err))
	}
	if err := version.ParsePrevResult(&c.net); err != nil {
		return nil, cnierr.Wrap(types.ErrDecodingFailure, c.subject, fmt.Errorf("decoding prevResult: %w", err))
	}
	return c, nil
}

// Add makes the master exist and be up, then passes prevResult on.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	lockPath := p.LockPath
	if lockPath == "" {
		lockPath = DefaultLockPath
	}
	release, err := lockNode(lockPath)
	if err != nil {
		return cnierr.Wrap(types.ErrIOFailure, c.subject, err)
	}
	err = ensure(netlinkHost{}, &c.cfg)
	release()
	if err != nil {
		return cnierr.Wrap(cnierr.SetupFailed, c.subject, fmt.Errorf("network %q: making master %s on the node: %w", c.net.Name, c.cfg.Master(), err))
	}
	res, err := result(&c.net)
	if err != nil {
		return cnierr.Wrap(types.ErrInvalidNetworkConfig, c.subject, err)
	}
	return types.PrintResult(res, c.net.CNIVersion)
}

// result is what ADD prints: prevResult when a plugin ran before, else an
// empty result. It prints one on every path that succeeds: printing nothing
// fails the runtime with "unexpected end of JSON input" (Spiderpool's
// ifacer did so when a bond's VLAN already existed).
func result(net *types.NetConf) (types.Result, error) {
	if net.PrevResult != nil {
		return net.PrevResult, nil
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	out, err := res.GetAsVersion(net.CNIVersion)
	if err != nil {
		return nil, fmt.Errorf("an empty result of cniVersion %q: %w", net.CNIVersion, err)
	}
	return out, nil
}

// Del changes nothing: the master serves every pod of the Network on the
// node, and knowing whether another pod still uses it would need state or
// a guess. It fails only on stdin it cannot decode, and not on a
// configuration ADD would refuse, so that a pod whose ADD failed is still
// torn down.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	_, err := decode(args)
	return err
}

// Check verifies that the master and what it is made of are still there
// and up: the plan from the node as it is must be empty.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	st, err := netlinkHost{}.observe(c.cfg.Interfaces)
	if err != nil {
		return cnierr.Wrap(cnierr.CheckFailed, c.subject, fmt.Errorf("reading the node's interfaces: %w", err))
	}
	if err := check(&c.cfg, st); err != nil {
		return cnierr.Wrap(cnierr.CheckFailed, c.subject, fmt.Errorf("network %q: master %s: %w", c.net.Name, c.cfg.Master(), err))
	}
	return nil
}

// check reports what ADD would still have to do on a node in state st.
func check(cfg *cniconf.IfacerConfig, st state) error {
	steps, err := plan(cfg, st)
	if err != nil {
		return err
	}
	// A link the plan creates or enslaves is reported as that, not also as
	// down.
	made := map[string]bool{}
	var missing []string
	for _, s := range steps {
		if s.op == opUp && made[s.link] {
			continue
		}
		if s.op == opCreateBond || s.op == opCreateVLAN || s.op == opEnslave {
			made[s.link] = true
		}
		if m := s.missing(); m != "" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	return nil
}
