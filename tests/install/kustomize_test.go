package install

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// `kubectl apply -k manifests/` installs everything Berth needs; the
// controller runs as installed; `kubectl delete -k manifests/` leaves
// nothing of Berth behind.
func TestKustomizeInstall(t *testing.T) {
	rendered := must(t)(kubectl(t, time.Minute, "kustomize", "manifests/"))
	kinds := map[string]int{}
	for _, doc := range strings.Split(rendered, "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("kubectl kustomize manifests/: %v", err)
		}
		kinds[meta.Kind]++
	}
	want := map[string]int{
		"CustomResourceDefinition":       6, // five of Berth's and Multus's NetworkAttachmentDefinition
		"Namespace":                      1,
		"ServiceAccount":                 2, // berth-controller, berth-cni
		"ClusterRole":                    2,
		"ClusterRoleBinding":             2,
		"Role":                           2,
		"RoleBinding":                    2,
		"Deployment":                     1,
		"PodDisruptionBudget":            1,
		"Service":                        1,
		"DaemonSet":                      2, // berth-cni, berth-sriov-dp
		"ConfigMap":                      1,
		"MutatingWebhookConfiguration":   1,
		"ValidatingWebhookConfiguration": 1,
	}
	if !maps.Equal(kinds, want) {
		t.Errorf("kubectl kustomize manifests/ renders %v, want %v", kinds, want)
	}

	uninstalled := false
	uninstall := func() {
		must(t)(kubectl(t, 4*time.Minute, "delete", "-k", "manifests/", "--wait=true", "--timeout=3m"))
		uninstalled = true
	}
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = kubectl(t, 4*time.Minute, "delete", "-k", "manifests/", "--ignore-not-found", "--timeout=3m")
		}
	})
	must(t)(kubectl(t, 2*time.Minute, "apply", "-k", "manifests/"))
	must(t)(kubectl(t, time.Minute, "wait", "--for=condition=Established", "--timeout=50s",
		"crd/ippools.berth.io", "crd/ipallocations.berth.io", "crd/networks.berth.io", "crd/attachmentpolicies.berth.io",
		"crd/coordinators.berth.io", "crd/network-attachment-definitions.k8s.cni.cncf.io"))

	// Least privilege: what the components need and nothing near it.
	for _, tt := range []struct {
		sa   string
		args []string
		want bool
	}{
		{"berth-cni", []string{"get", "pods", "--namespace=tenant"}, true},
		{"berth-cni", []string{"list", "pods", "--namespace=tenant"}, false},
		{"berth-cni", []string{"get", "secrets", "--namespace=berth-system"}, false},
		{"berth-controller", []string{"update", "secrets", "--namespace=berth-system"}, true},
		{"berth-controller", []string{"get", "secrets", "--namespace=default"}, false},
		{"berth-controller", []string{"get", "configmaps", "--namespace=kube-system"}, true},
		{"berth-controller", []string{"get", "configmaps", "--namespace=default"}, false},
		{"berth-controller", []string{"create", "pods", "--namespace=tenant"}, false},
		{"berth-controller", []string{"delete", "pods", "--namespace=tenant"}, false},
		{"berth-controller", []string{"patch", "mutatingwebhookconfigurations/berth"}, true},
		{"berth-controller", []string{"patch", "mutatingwebhookconfigurations/another"}, false},
		{"berth-controller", []string{"delete", "validatingwebhookconfigurations/berth"}, false},
	} {
		args := append([]string{"auth", "can-i", "--as=system:serviceaccount:berth-system:" + tt.sa}, tt.args...)
		out, err := kubectl(t, 30*time.Second, args...)
		got := strings.TrimSpace(out) == "yes"
		if got != tt.want || (err != nil && strings.TrimSpace(out) != "no") {
			t.Errorf("kubectl %s: %q (%v), want allowed=%v", strings.Join(args, " "), out, err, tt.want)
		}
	}

	t.Run("berth-controller runs as installed", func(t *testing.T) {
		checkInstalled(t, runInstalled(t, "berth-system"), "kustomize")
	})

	uninstall()
	ctx := ctxFor(t, time.Minute)
	assertGone(ctx, t, &corev1.Namespace{}, "berth-system")
	for _, crd := range []string{"ippools.berth.io", "ipallocations.berth.io", "networks.berth.io", "attachmentpolicies.berth.io", "coordinators.berth.io"} {
		assertGone(ctx, t, &apiextensionsv1.CustomResourceDefinition{}, crd)
	}
	assertClusterScopedGone(ctx, t)
}

// assertClusterScopedGone fails the test if the webhook configurations or
// ClusterRoles of an install are left.
func assertClusterScopedGone(ctx context.Context, t *testing.T) {
	t.Helper()
	assertGone(ctx, t, &admissionregistrationv1.MutatingWebhookConfiguration{}, "berth")
	assertGone(ctx, t, &admissionregistrationv1.ValidatingWebhookConfiguration{}, "berth")
	var roles rbacv1.ClusterRoleList
	if err := cp.Client.List(ctx, &roles, client.MatchingLabels{"app.kubernetes.io/part-of": "berth"}); err != nil {
		t.Fatal(err)
	}
	if len(roles.Items) > 0 {
		t.Errorf("ClusterRoles left after the uninstall: %v", names(roles.Items))
	}
}

// assertGone fails the test if the cluster still has the object.
func assertGone(ctx context.Context, t *testing.T, obj client.Object, name string) {
	t.Helper()
	err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, obj)
	if !apierrors.IsNotFound(err) {
		t.Errorf("%T %s after the uninstall: %v (deletion %v)", obj, name, err, obj.GetDeletionTimestamp())
	}
}

func names(roles []rbacv1.ClusterRole) []string {
	var out []string
	for _, r := range roles {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}
