// Package multus invokes CNI plugin chains the way Multus does, so that
// tests and the demo can take a pod from its annotations to interfaces in a
// network namespace without a kubelet: it reads the pod's networks
// annotation (and default-network), resolves each NetworkAttachmentDefinition
// from the API server, and runs each chain through libcni with the
// interface name, the "ips" and "mac" runtimeConfig capabilities, args.cni
// from the element's cni-args and the K8S_POD_* CNI_ARGS Multus passes.
package multus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// PodRef names the pod a chain is run for.
type PodRef struct {
	Namespace, Name, UID string
}

// ContainerID is the sandbox ID the driver uses for the pod: derived from
// the pod, so that DEL finds what ADD made without state of its own.
func (p PodRef) ContainerID() string {
	sum := sha256.Sum256([]byte(p.Namespace + "/" + p.Name + "/" + p.UID))
	return hex.EncodeToString(sum[:])
}

// Attachment is one delegate invocation as Multus makes it.
type Attachment struct {
	// Network is the NetworkAttachmentDefinition as namespace/name.
	Network string
	// IfName is the interface name in the pod.
	IfName string
	// Config is the NAD's spec.config: a plugin list or a single plugin.
	Config []byte
	// CNIArgs are the element's cni-args, given to every plugin of the
	// chain as args.cni.
	CNIArgs map[string]any
	// IPs and MAC are the element's ips and mac, given as runtimeConfig
	// to the plugins that declare those capabilities.
	IPs []string
	MAC string
}

// Runtime runs chains; the zero value runs plugins in the caller's netns
// from /opt/cni/bin with a cache in the temp dir.
type Runtime struct {
	// BinDirs are searched for plugin binaries.
	BinDirs []string
	// CacheDir holds libcni's result cache, from which DEL and CHECK take
	// prevResult as Multus's does.
	CacheDir string
	// Exec runs a plugin; nil means libcni's default (in the caller's
	// netns). netsim.PluginExec runs them in a simulated node.
	Exec invoke.Exec
}

func (r *Runtime) cni() *libcni.CNIConfig {
	dirs := r.BinDirs
	if len(dirs) == 0 {
		dirs = []string{"/opt/cni/bin"}
	}
	cache := r.CacheDir
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "berth-multus-cache")
	}
	return libcni.NewCNIConfigWithCacheDir(dirs, cache, r.Exec)
}

func runtimeConf(pod PodRef, netns string, a Attachment) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ContainerID(),
		NetNS:       netns,
		IfName:      a.IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ContainerID()},
			{"K8S_POD_UID", pod.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	if len(a.IPs) > 0 {
		rt.CapabilityArgs["ips"] = a.IPs
	}
	if a.MAC != "" {
		rt.CapabilityArgs["mac"] = a.MAC
	}
	return rt
}

// confList turns the NAD config into a plugin list with args.cni set in
// every plugin, as Multus does with cni-args.
func confList(a Attachment) (*libcni.NetworkConfigList, error) {
	var top map[string]any
	if err := json.Unmarshal(a.Config, &top); err != nil {
		return nil, fmt.Errorf("network %s: spec.config is not a JSON object: %w", a.Network, err)
	}
	plugins, isList := top["plugins"].([]any)
	setArgs := func(p map[string]any) {
		if len(a.CNIArgs) == 0 {
			return
		}
		args, _ := p["args"].(map[string]any)
		if args == nil {
			args = map[string]any{}
		}
		cni, _ := args["cni"].(map[string]any)
		if cni == nil {
			cni = map[string]any{}
		}
		for k, v := range a.CNIArgs {
			cni[k] = v
		}
		args["cni"] = cni
		p["args"] = args
	}
	if isList {
		for i, p := range plugins {
			m, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("network %s: spec.config plugins[%d] is not an object", a.Network, i)
			}
			setArgs(m)
		}
	} else {
		setArgs(top)
	}
	data, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("network %s: encoding the config: %w", a.Network, err)
	}
	if isList {
		list, err := libcni.NetworkConfFromBytes(data)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", a.Network, err)
		}
		return list, nil
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", a.Network, err)
	}
	list, err := libcni.ConfListFromConf(conf)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", a.Network, err)
	}
	return list, nil
}

// Add runs ADD of the attachment's chain into netns.
func (r *Runtime) Add(ctx context.Context, pod PodRef, netns string, a Attachment) (*current.Result, error) {
	list, err := confList(a)
	if err != nil {
		return nil, err
	}
	res, err := r.cni().AddNetworkList(ctx, list, runtimeConf(pod, netns, a))
	if err != nil {
		return nil, fmt.Errorf("ADD of network %s as %s: %w", a.Network, a.IfName, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("ADD of network %s as %s: converting the result: %w", a.Network, a.IfName, err)
	}
	return cur, nil
}

// Check runs CHECK of the chain with the cached result as prevResult.
func (r *Runtime) Check(ctx context.Context, pod PodRef, netns string, a Attachment) error {
	list, err := confList(a)
	if err != nil {
		return err
	}
	if err := r.cni().CheckNetworkList(ctx, list, runtimeConf(pod, netns, a)); err != nil {
		return fmt.Errorf("CHECK of network %s as %s: %w", a.Network, a.IfName, err)
	}
	return nil
}

// Del runs DEL of the chain, with the cached result as prevResult when
// there is one.
func (r *Runtime) Del(ctx context.Context, pod PodRef, netns string, a Attachment) error {
	list, err := confList(a)
	if err != nil {
		return err
	}
	if err := r.cni().DelNetworkList(ctx, list, runtimeConf(pod, netns, a)); err != nil {
		return fmt.Errorf("DEL of network %s as %s: %w", a.Network, a.IfName, err)
	}
	return nil
}

// GC runs the chain's garbage collection (spec 1.1.0) with the attachments
// still valid, as a runtime does after a restart: libcni first DELs the
// cached attachments not in valid, then each plugin collects the rest.
func (r *Runtime) GC(ctx context.Context, a Attachment, valid []types.GCAttachment) error {
	list, err := confList(a)
	if err != nil {
		return err
	}
	if err := r.cni().GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return fmt.Errorf("GC of network %s: %w", a.Network, err)
	}
	return nil
}
