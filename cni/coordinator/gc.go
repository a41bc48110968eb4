package coordinator

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/berth-io/berth/cni/cnierr"
)

// vethAlias marks a host veth with the network and attachment it serves,
// so that GC can tell its own network's veths from other networks'.
func vethAlias(network, containerID, ifName string) string {
	return aliasPrefix(network) + containerID + " ifname=" + ifName
}

func aliasPrefix(network string) string {
	return "berth-coordinator network=" + network + " container="
}

// GC (CNI 1.1.0) removes what DEL should have removed for attachments of
// this network the runtime no longer knows: host veths whose alias names
// this network and an attachment not in cni.dev/valid-attachments, and
// host rules to pod addresses that no route of hostRuleTable serves any
// more (their veth went with a netns that was deleted without DEL).
func (p *Plugin) GC(args *skel.CmdArgs) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	valid := map[string]bool{}
	for _, a := range c.conf.ValidAttachments {
		valid[vethAlias(c.conf.Name, a.ContainerID, a.IfName)] = true
	}
	var errs []error
	links, err := netlinksafe.LinkList()
	if err != nil {
		return cnierr.Wrap(cnierr.SetupFailed, c.subject, fmt.Errorf("listing the host's links: %w", err))
	}
	prefix := aliasPrefix(c.conf.Name)
	for _, l := range links {
		alias := l.Attrs().Alias
		if !strings.HasPrefix(l.Attrs().Name, HostVethPrefix) || !strings.HasPrefix(alias, prefix) || valid[alias] {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("deleting stale host veth %s (%s): %w", l.Attrs().Name, alias, err))
		}
	}
	errs = append(errs, sweepHostRules(c.cfg.HostRuleTable))
	if err := errors.Join(errs...); err != nil {
		return cnierr.Wrap(cnierr.SetupFailed, c.subject, err)
	}
	return nil
}

// sweepHostRules deletes the "to <address> lookup table" rules at the
// coordinator's priority that no route of the table serves. Rules are
// listed before routes: ADD adds the route first, so a rule seen here
// whose route is missing afterwards is stale, not half-made.
func sweepHostRules(table int) error {
	rules, err := rulesOf(table)
	if err != nil {
		return err
	}
	var errs []error
	for i := range rules {
		r := &rules[i]
		dst, ok := prefixOf(r.Dst)
		if r.Table != table || r.Priority != HostRulePriority || !ok || !dst.IsSingleIP() {
			continue
		}
		served, err := routedIn(table, dst.Addr())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !served {
			errs = append(errs, delRule(r))
		}
	}
	return errors.Join(errs...)
}
