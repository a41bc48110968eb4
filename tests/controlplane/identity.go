package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ServiceAccountUser is the username and groups the API server gives the
// token of ServiceAccount namespace/name.
func ServiceAccountUser(namespace, name string) (string, []string) {
	return "system:serviceaccount:" + namespace + ":" + name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}

// ConfigAs is the admin rest.Config acting as user (impersonation): what
// the API server authorizes is user's RBAC, not the admin's.
func (cp *ControlPlane) ConfigAs(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// WriteKubeconfigAs writes a copy of the admin kubeconfig that acts as user.
func (cp *ControlPlane) WriteKubeconfigAs(path, user string, groups ...string) error {
	cfg, err := clientcmd.LoadFromFile(cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", cp.Kubeconfig, err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
		auth.ImpersonateGroups = groups
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// Apply creates every object of the YAML files (several documents each),
// leaving those that exist as they are.
func (cp *ControlPlane) Apply(ctx context.Context, files ...string) error {
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("applying %s: %w", file, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err != nil {
				f.Close()
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("applying %s: %w", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := cp.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				f.Close()
				return fmt.Errorf("applying %s: %s %s: %w", file, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	return nil
}

// rbacDenial is how the RBAC authorizer words a refusal, also inside a
// JSON log line (quotes escaped).
var rbacDenial = regexp.MustCompile(`forbidden: User \\?"[^"\\]*\\?" cannot`)

// RBACDenials returns the lines of a log where the API server's authorizer
// refused the logging component something.
func RBACDenials(log []byte) []string {
	var out []string
	for _, line := range strings.Split(string(log), "\n") {
		if rbacDenial.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}
