package policies

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
)

// shippedFS holds the shipped policies, their tests and the helper library.
//
//go:embed rego/*.rego
var shippedFS embed.FS

const (
	shippedDir = "rego"
	libFile    = "rego/lib.rego"
	// ShippedPrefix starts the name of every shipped policy. A slash cannot
	// appear in an AttachmentPolicy's name, so the two never collide.
	ShippedPrefix = "berth/"
)

// ShippedPolicy describes one policy embedded in the binary.
type ShippedPolicy struct {
	// Name is what Options and flags use, e.g. "static-ips"; the policy is
	// named ShippedPrefix+Name in decisions and denials.
	Name     string
	Priority int32
	// File is the path of the module in the embedded tree.
	File string
}

// ShippedPolicies lists the shipped policies, highest precedence first. The
// deciding ones have priorities above the AttachmentPolicy default (100), so
// an administrator's policy overrides what a pod asks for; their order makes
// Berth's own pod annotations win over Spiderpool's, both over namespace
// defaults, and all of them over the plain Multus request.
func ShippedPolicies() []ShippedPolicy {
	return []ShippedPolicy{
		{Name: "annotations", Priority: 1000, File: "rego/annotations.rego"},
		{Name: "spiderpool", Priority: 1100, File: "rego/spiderpool.rego"},
		{Name: "namespace-defaults", Priority: 1200, File: "rego/namespace_defaults.rego"},
		{Name: "requested-networks", Priority: 1300, File: "rego/requested_networks.rego"},
		{Name: "pool-selectors", Priority: 1000, File: "rego/pool_selectors.rego"},
		{Name: "static-ips", Priority: 1000, File: "rego/static_ips.rego"},
	}
}

// ShippedSources returns the shipped policies as Sources, leaving out those
// named in disabled. An unknown name is an error, so a typo in a flag does
// not silently leave a policy on.
func ShippedSources(disabled []string) ([]Source, error) {
	all := ShippedPolicies()
	for _, name := range disabled {
		if !slices.ContainsFunc(all, func(p ShippedPolicy) bool { return p.Name == name }) {
			return nil, fmt.Errorf("unknown shipped policy %q (known: %s)", name, strings.Join(ShippedNames(), ", "))
		}
	}
	var out []Source
	for _, p := range all {
		if slices.Contains(disabled, p.Name) {
			continue
		}
		data, err := shippedFS.ReadFile(p.File)
		if err != nil {
			return nil, fmt.Errorf("reading shipped policy %s: %w", p.Name, err)
		}
		out = append(out, Source{Name: ShippedPrefix + p.Name, Priority: p.Priority, Rego: string(data)})
	}
	return out, nil
}

// ShippedNames are the names ShippedSources accepts.
func ShippedNames() []string {
	var names []string
	for _, p := range ShippedPolicies() {
		names = append(names, p.Name)
	}
	return names
}

// shippedLib is the source of the helper library.
func shippedLib() string {
	data, err := shippedFS.ReadFile(libFile)
	if err != nil {
		// The file is embedded at build time; its absence is a build bug.
		panic(fmt.Sprintf("embedded %s missing: %v", libFile, err))
	}
	return string(data)
}

// shippedFiles lists every embedded .rego file (policies, library, tests),
// for the tests that run the Rego tests.
func shippedFiles() ([]string, error) {
	entries, err := shippedFS.ReadDir(shippedDir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		files = append(files, path.Join(shippedDir, e.Name()))
	}
	return files, nil
}
