// Package render turns a Network, the data of its IP pools and the cluster's
// Coordinator into the Multus NetworkAttachmentDefinition Berth generates for
// it: a CNI configuration list of [berth-ifacer,] the main plugin with
// berth-ipam as IPAM[, berth-coordinator]. It is pure: the controller reads
// the objects, render decides the bytes, so the output can be pinned by golden
// files and checked with libcni.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
)

// Input is everything a NetworkAttachmentDefinition is rendered from.
type Input struct {
	// Network is the Network to render; its annotations choose the NAD name
	// and the cniVersion.
	Network *berthv1.Network
	// Pools are the IPPools whose routing data berth-ipam carries for
	// addresses that arrive through the "ips" capability; rendered sorted by
	// name, so their order here does not matter.
	Pools []berthv1.IPPool
	// Coordinator is the cluster's Coordinator "default": its settings are
	// the defaults the Network's own override, its status the cluster CIDRs.
	// Nil renders the Network's settings alone.
	Coordinator *berthv1.Coordinator
	// NodeKubeconfig is the path, on the nodes, of the kubeconfig berth-ipam
	// and berth-coordinator use when called without Multus; empty leaves it
	// out of the configuration.
	NodeKubeconfig string
}

// NAD renders the NetworkAttachmentDefinition of in.Network: name and
// namespace, the berth.io/network label, the SR-IOV resourceName annotation
// where the network needs a device, and the configuration. It sets no owner
// reference; the controller does.
func NAD(in Input) (*nadv1.NetworkAttachmentDefinition, error) {
	cfg, err := Config(in)
	if err != nil {
		return nil, err
	}
	nw := in.Network
	nad := &nadv1.NetworkAttachmentDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: nadv1.GroupVersion.String(), Kind: "NetworkAttachmentDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      network.NADName(nw),
			Namespace: nw.Namespace,
			Labels:    map[string]string{network.LabelNetwork: nw.Name},
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: cfg},
	}
	if rn := ResourceName(nw); rn != "" {
		nad.Annotations = map[string]string{nadv1.ResourceNameAnnotation: rn}
	}
	return nad, nil
}

// ResourceName is the device plugin resource pods of nw need, or "": the
// SR-IOV resource, or for a custom network the resourceName annotation the
// Network itself carries (custom configs cannot say it otherwise).
func ResourceName(nw *berthv1.Network) string {
	switch nw.Spec.CNIType {
	case berthv1.CNITypeSRIOV:
		if nw.Spec.SRIOV != nil {
			return nw.Spec.SRIOV.ResourceName
		}
	case berthv1.CNITypeCustom:
		return nw.Annotations[nadv1.ResourceNameAnnotation]
	}
	return ""
}

// Config renders the CNI configuration list of in.Network as indented JSON.
// The result always parses with libcni's ConfListFromBytes and has at least
// one plugin; anything else is an error naming the Network and the field.
func Config(in Input) (string, error) {
	nw := in.Network
	if nw == nil {
		return "", fmt.Errorf("rendering a NetworkAttachmentDefinition: no Network given")
	}
	list, err := confList(in)
	if err != nil {
		return "", fmt.Errorf("network %s/%s: %w", nw.Namespace, nw.Name, err)
	}
	out, err := marshal(list)
	if err != nil {
		return "", fmt.Errorf("network %s/%s: encoding the CNI configuration: %w", nw.Namespace, nw.Name, err)
	}
	parsed, err := libcni.ConfListFromBytes(out)
	if err != nil {
		return "", fmt.Errorf("network %s/%s: the rendered CNI configuration does not parse: %w", nw.Namespace, nw.Name, err)
	}
	if len(parsed.Plugins) == 0 {
		return "", fmt.Errorf("network %s/%s: the rendered CNI configuration has no plugin", nw.Namespace, nw.Name)
	}
	return string(out), nil
}

// confList builds the configuration list as generic JSON values.
func confList(in Input) (map[string]any, error) {
	nw := in.Network
	version := network.CNIVersion(nw)
	if version != "" && !network.CNIVersionSupported(version) {
		return nil, fmt.Errorf("metadata.annotations[%s]: cniVersion %q is not one of %v", network.AnnotationCNIVersion, version, network.SupportedCNIVersions())
	}
	ipam := IPAM(in.Pools, in.NodeKubeconfig)
	if err := validIPAM(ipam); err != nil {
		return nil, err
	}
	var coord map[string]any
	if network.NeedsCoordinator(nw, in.Coordinator) {
		c := Coordinator(nw, in.Coordinator, in.NodeKubeconfig)
		var err error
		if coord, err = toMap(c); err != nil {
			return nil, fmt.Errorf("encoding berth-coordinator: %w", err)
		}
		// cniconf.CoordinatorConfig embeds types.NetConf, whose empty ipam
		// and dns objects mean nothing to the coordinator.
		dropEmptyObject(coord, "ipam")
		dropEmptyObject(coord, "dns")
	}

	if nw.Spec.CNIType == berthv1.CNITypeCustom {
		if nw.Spec.Custom == nil {
			return nil, fmt.Errorf("spec.custom is required when spec.cniType is custom")
		}
		return customList(network.NADName(nw), version, nw.Spec.Custom.Config, ipam, coord)
	}
	plugins, err := mainPlugins(nw, ipam)
	if err != nil {
		return nil, err
	}
	if coord != nil {
		plugins = append(plugins, coord)
	}
	if version == "" {
		version = network.DefaultCNIVersion
	}
	return map[string]any{
		"cniVersion": version,
		"name":       network.NADName(nw),
		"plugins":    plugins,
	}, nil
}

// toMap turns a plugin configuration struct into a generic JSON object. The
// value (not a pointer) is marshalled on purpose: types.NetConf, embedded in
// the cniconf structs, has a pointer MarshalJSON that, promoted, would encode
// only its own fields and drop the plugin's.
func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func dropEmptyObject(m map[string]any, key string) {
	if obj, ok := m[key].(map[string]any); ok && len(obj) == 0 {
		delete(m, key)
	}
}

// marshal encodes indented JSON, keys sorted, without HTML escaping (a CNI
// configuration is no web page; "<" should stay "<").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Pretty re-indents a CNI configuration for people to read; input that is
// not JSON is an error.
func Pretty(config string) (string, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(config), "", "  "); err != nil {
		return "", fmt.Errorf("indenting CNI configuration: %w", err)
	}
	return buf.String(), nil
}
