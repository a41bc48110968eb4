package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-io/berth/api/cniconf"
	"github.com/berth-io/berth/network"
)

// CustomConfig is a user's CNI configuration, parsed: one plugin or a list.
type CustomConfig struct {
	// Top holds the list's own keys (name, cniVersion, disableCheck...)
	// without "plugins"; for a single plugin, its name and cniVersion.
	Top map[string]any
	// Plugins are the plugin configurations in chain order.
	Plugins []map[string]any
}

// ParseCustom parses spec.custom.config: a JSON object that is either one
// plugin configuration (with a "type") or a configuration list (with
// "plugins", each with a "type"), and that containernetworking/cni's libcni
// accepts. Errors say what is wrong in terms of the document.
func ParseCustom(raw string) (*CustomConfig, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON object")
	}
	if top == nil {
		return nil, errors.New("not a JSON object: null")
	}
	cc := &CustomConfig{Top: top}
	rawPlugins, isList := top["plugins"]
	if !isList {
		if _, err := libcni.NetworkPluginConfFromBytes([]byte(raw)); err != nil {
			return nil, pluginError(top, err)
		}
		plugin := top
		cc.Top = map[string]any{}
		for _, k := range []string{"name", "cniVersion"} {
			if v, ok := plugin[k]; ok {
				cc.Top[k] = v
				delete(plugin, k)
			}
		}
		cc.Plugins = []map[string]any{plugin}
		return cc, nil
	}
	if _, ok := top["name"]; !ok {
		// libcni requires a list name; Berth supplies the NAD's, so check
		// the rest of the list with a stand-in.
		top["name"] = "-"
		defer delete(top, "name")
	}
	check, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("re-encoding: %w", err)
	}
	if _, err := libcni.ConfListFromBytes(check); err != nil {
		return nil, err
	}
	list, ok := rawPlugins.([]any)
	if !ok || len(list) == 0 {
		return nil, errors.New(`"plugins" must be a non-empty list of plugin configurations`)
	}
	delete(top, "plugins")
	for i, p := range list {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("plugins[%d]: not a JSON object", i)
		}
		if t, _ := m["type"].(string); t == "" {
			return nil, fmt.Errorf("plugins[%d]: names no \"type\"", i)
		}
		cc.Plugins = append(cc.Plugins, m)
	}
	return cc, nil
}

// pluginError words libcni's complaint about a single plugin configuration.
func pluginError(top map[string]any, err error) error {
	if t, _ := top["type"].(string); t == "" {
		return errors.New(`names no "type" (and no "plugins" list)`)
	}
	return err
}

// MainIPAMType is the IPAM type of the first plugin of a custom config: ""
// when it has no ipam section (Berth adds berth-ipam), else the type written.
func (cc *CustomConfig) MainIPAMType() (string, bool) {
	ipam, ok := cc.Plugins[0]["ipam"].(map[string]any)
	if !ok {
		return "", false
	}
	t, _ := ipam["type"].(string)
	return t, true
}

// customList completes a user's configuration: the first plugin gets
// berth-ipam (unless it names another IPAM, or an empty "ipam": {} to have
// none) and the "ips" capability; berth-coordinator is appended, or replaces
// one the user listed, when coord is not nil.
func customList(name, version, raw string, ipam cniconf.IPAMConfig, coord map[string]any) (map[string]any, error) {
	cc, err := ParseCustom(raw)
	if err != nil {
		return nil, fmt.Errorf("spec.custom.config: %w", err)
	}
	main := cc.Plugins[0]
	ipamType, hasIPAM := cc.MainIPAMType()
	if _, present := main["ipam"]; present && !hasIPAM {
		return nil, errors.New(`spec.custom.config: the first plugin's "ipam" is not a JSON object`)
	}
	if !hasIPAM || ipamType == cniconf.IPAMType {
		ours, err := toMap(ipam)
		if err != nil {
			return nil, fmt.Errorf("encoding berth-ipam: %w", err)
		}
		if existing, ok := main["ipam"].(map[string]any); ok {
			// Keep what the user added (a kubeconfig, say); Berth's pool
			// data and type win.
			for k, v := range existing {
				if _, set := ours[k]; !set {
					ours[k] = v
				}
			}
		}
		main["ipam"] = ours
		caps := map[string]any{}
		if c, present := main["capabilities"]; present {
			var ok bool
			if caps, ok = c.(map[string]any); !ok {
				return nil, errors.New(`spec.custom.config: the first plugin's "capabilities" is not a JSON object`)
			}
		}
		caps["ips"] = true
		main["capabilities"] = caps
	}
	var plugins []any
	replaced := false
	for _, p := range cc.Plugins {
		if t, _ := p["type"].(string); t == cniconf.CoordinatorType && coord != nil {
			plugins = append(plugins, coord)
			replaced = true
			continue
		}
		plugins = append(plugins, p)
	}
	if coord != nil && !replaced {
		plugins = append(plugins, coord)
	}
	out := cc.Top
	out["plugins"] = plugins
	if _, ok := out["name"].(string); !ok {
		out["name"] = name
	}
	switch v, _ := out["cniVersion"].(string); {
	case version != "":
		out["cniVersion"] = version
	case v == "":
		out["cniVersion"] = network.DefaultCNIVersion
	case !network.CNIVersionSupported(v):
		return nil, fmt.Errorf("spec.custom.config: cniVersion %q is not one of %v, which Berth's plugins answer", v, network.SupportedCNIVersions())
	}
	return out, nil
}
