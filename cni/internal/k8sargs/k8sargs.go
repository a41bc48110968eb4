// Package k8sargs reads what a container runtime and Multus tell a CNI
// plugin about the pod: the K8S_* keys of CNI_ARGS, and the Berth keys of
// args.cni (the selection element's cni-args).
package k8sargs

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-io/berth/api/assignment"
	"github.com/berth-io/berth/api/cniconf"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// Pod is the pod identity the runtime passes in CNI_ARGS.
type Pod struct {
	Namespace, Name, UID, InfraContainerID string
}

// Known reports whether the runtime named the pod.
func (p Pod) Known() bool { return p.Namespace != "" && p.Name != "" }

// ParsePod reads CNI_ARGS ("K1=V1;K2=V2"). Keys other than K8S_POD_* are
// ignored: runtimes and Multus add their own (IgnoreUnknown, ...).
func ParsePod(cniArgs string) (Pod, error) {
	var p Pod
	if strings.TrimSpace(cniArgs) == "" {
		return p, nil
	}
	seen := map[string]bool{}
	for i, pair := range strings.Split(cniArgs, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return Pod{}, fmt.Errorf("CNI_ARGS: element %d %q is not KEY=VALUE", i, pair)
		}
		var dst *string
		switch k {
		case "K8S_POD_NAMESPACE":
			dst = &p.Namespace
		case "K8S_POD_NAME":
			dst = &p.Name
		case "K8S_POD_UID":
			dst = &p.UID
		case "K8S_POD_INFRA_CONTAINER_ID":
			dst = &p.InfraContainerID
		default:
			continue
		}
		if seen[k] {
			return Pod{}, fmt.Errorf("CNI_ARGS: %s appears twice", k)
		}
		seen[k] = true
		*dst = v
	}
	return p, nil
}

// RawArgs is the "args" member of a plugin configuration.
type RawArgs struct {
	CNI map[string]json.RawMessage `json:"cni,omitempty"`
}

// Args are the Berth keys found in args.cni.
type Args struct {
	// Assignment is the interface's part of berth.io/assignment; nil when
	// absent.
	Assignment *assignment.Interface
	// DefaultRouteNIC is the pod interface carrying the default route;
	// empty when absent.
	DefaultRouteNIC string
}

// ParseArgs reads the Berth keys of args.cni; other keys are left to other
// plugins. Errors name the key.
func ParseArgs(raw *RawArgs) (Args, error) {
	var a Args
	if raw == nil {
		return a, nil
	}
	if data, ok := raw.CNI[cniconf.ArgsAssignmentKey]; ok && !isNull(data) {
		itf, err := assignment.ParseInterface(data)
		if err != nil {
			return Args{}, fmt.Errorf("args.cni[%q]: %w", cniconf.ArgsAssignmentKey, err)
		}
		a.Assignment = itf
	}
	if data, ok := raw.CNI[cniconf.ArgsDefaultRouteNICKey]; ok && !isNull(data) {
		if err := json.Unmarshal(data, &a.DefaultRouteNIC); err != nil {
			return Args{}, fmt.Errorf("args.cni[%q]: not a JSON string: %w", cniconf.ArgsDefaultRouteNICKey, err)
		}
		if err := nadv1.ValidateInterfaceName(a.DefaultRouteNIC); err != nil {
			return Args{}, fmt.Errorf("args.cni[%q]: %w", cniconf.ArgsDefaultRouteNICKey, err)
		}
	}
	return a, nil
}

func isNull(data json.RawMessage) bool { return strings.TrimSpace(string(data)) == "null" }
