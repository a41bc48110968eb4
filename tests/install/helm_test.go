package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/berth-io/berth/policies"
)

const chart = "manifests/helm/berth"

// `helm install` with values installs Berth; the controller runs as
// installed; `helm uninstall` removes all but the CRDs, which Helm never
// deletes (they hold the pools).
func TestHelmInstall(t *testing.T) {
	if out, err := helm(t, time.Minute, "lint", "--strict", chart); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = helm(t, 3*time.Minute, "uninstall", "berth", "--namespace", "berth-system", "--wait", "--timeout=2m")
		}
		_, _ = kubectl(t, 3*time.Minute, "delete", "namespace", "berth-system", "--ignore-not-found", "--timeout=2m")
	})
	must(t)(helm(t, 3*time.Minute, "install", "berth", chart, "--namespace", "berth-system", "--create-namespace",
		"--set", "controller.replicas=3", "--set", "controller.reservationTTL=90s", "--set", "deviceplugin.enabled=false"))

	ctx := ctxFor(t, time.Minute)
	var dep appsv1.Deployment
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "berth-system", Name: "berth-controller"}, &dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 || !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--reservation-ttl=90s") {
		t.Errorf("values did not reach the Deployment: replicas %d, args %v", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Args)
	}
	var daemonsets appsv1.DaemonSetList
	if err := cp.Client.List(ctx, &daemonsets, client.InNamespace("berth-system")); err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, d := range daemonsets.Items {
		ds = append(ds, d.Name)
	}
	if !slices.Equal(ds, []string{"berth-cni"}) {
		t.Errorf("DaemonSets with deviceplugin.enabled=false: %v, want [berth-cni]", ds)
	}

	t.Run("berth-controller runs as installed", func(t *testing.T) {
		checkInstalled(t, runInstalled(t, "berth-system"), "helm")
	})

	must(t)(helm(t, 3*time.Minute, "uninstall", "berth", "--namespace", "berth-system", "--wait", "--timeout=2m"))
	uninstalled = true
	ctx = ctxFor(t, time.Minute)
	assertClusterScopedGone(ctx, t)
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "berth-system", Name: "berth-controller"}, &appsv1.Deployment{}); err == nil {
		t.Error("Deployment berth-controller left after helm uninstall")
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "ippools.berth.io"}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
		t.Errorf("helm uninstall removed the IPPool CRD (Helm keeps CRDs): %v", err)
	}
}

// Values the chart cannot honour are refused by its schema before anything
// is rendered, with the value's path.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, tt := range []struct {
		set, want string
	}{
		{"webhook.certificates=letsencrypt", "at '/webhook/certificates': value must be one of 'selfManaged', 'certManager'"},
		{"webhook.timeoutSeconds=31", "at '/webhook/timeoutSeconds': maximum: got 31, want 30"},
		{"webhook.timeoutSeconds=0", "at '/webhook/timeoutSeconds': minimum: got 0, want 1"},
		{"controller.replicas=0", "at '/controller/replicas': minimum: got 0, want 1"},
		{"controller.replica=3", "at '/controller': additional properties 'replica' not allowed"},
		{"controller.reservationTTL=soon", "at '/controller/reservationTTL': 'soon' does not match pattern"},
		{"controller.imagePullPolicy=Sometimes", "at '/controller/imagePullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"},
		{"controller.image=", "at '/controller/image': minLength: got 0, want 1"},
		{"controller.disabledPolicies={spiderpol}", "at '/controller/disabledPolicies/0': value must be one of"},
		{"cni.image=a b", "at '/cni/image': 'a b' does not match pattern"},
		{"deviceplugin.enabled=maybe", "at '/deviceplugin/enabled': got string, want boolean"},
		{"webhook.certManager.issuerRef.kind=ClusterIssuer", "at '/webhook/certManager/issuerRef': properties 'name' required, if 'kind' exists"},
		{"multus.enabled=true", "additional properties 'multus' not allowed"},
	} {
		t.Run(tt.set, func(t *testing.T) {
			out, err := helm(t, time.Minute, "template", "berth", chart, "--namespace", "berth-system", "--set", tt.set)
			if err == nil {
				t.Fatalf("helm template --set %s rendered:\n%s", tt.set, out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("helm template --set %s:\n%v\nwant it to say %q", tt.set, err, tt.want)
			}
		})
	}
}

// The schema's list of policies that may be disabled is the engine's.
func TestHelmSchemaKnowsTheShippedPolicies(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo(t), chart, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Controller struct {
				Properties struct {
					DisabledPolicies struct {
						Items struct {
							Enum []string `json:"enum"`
						} `json:"items"`
					} `json:"disabledPolicies"`
				} `json:"properties"`
			} `json:"controller"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	got := slices.Sorted(slices.Values(schema.Properties.Controller.Properties.DisabledPolicies.Items.Enum))
	want := slices.Sorted(slices.Values(policies.ShippedNames()))
	if !slices.Equal(got, want) {
		t.Errorf("values.schema.json lets controller.disabledPolicies name %v; the shipped policies are %v", got, want)
	}
}

// With webhook.certificates=certManager the chart asks cert-manager for the
// serving certificate (its own self-signed Issuer, or the one named),
// mounts it, and has the cainjector fill the caBundle.
func TestHelmCertManager(t *testing.T) {
	for _, tt := range []struct {
		name       string
		set        []string
		wantIssuer bool
		issuerKind string
		issuerName string
	}{
		{"own issuer", nil, true, "Issuer", "berth-selfsigned"},
		{"named issuer", []string{"webhook.certManager.issuerRef.name=corp-ca", "webhook.certManager.issuerRef.kind=ClusterIssuer"}, false, "ClusterIssuer", "corp-ca"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "berth", chart, "--namespace", "net", "--set", "webhook.certificates=certManager"}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			objs := decodeAll(t, must(t)(helm(t, time.Minute, args...)))
			byKind := map[string][]*unstructured.Unstructured{}
			for _, o := range objs {
				byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
			}
			if got := len(byKind["Issuer"]); (got == 1) != tt.wantIssuer {
				t.Errorf("%d Issuers rendered, want one: %v", got, tt.wantIssuer)
			}
			if len(byKind["Certificate"]) != 1 {
				t.Fatalf("%d Certificates rendered, want 1", len(byKind["Certificate"]))
			}
			cert := byKind["Certificate"][0]
			dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
			if !slices.Contains(dns, "berth-webhook.net.svc") {
				t.Errorf("Certificate dnsNames %v lack the Service's name berth-webhook.net.svc", dns)
			}
			kind, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "kind")
			name, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
			if kind != tt.issuerKind || name != tt.issuerName {
				t.Errorf("Certificate issuerRef %s/%s, want %s/%s", kind, name, tt.issuerKind, tt.issuerName)
			}
			secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
			for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				for _, w := range byKind[kind] {
					if got := w.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != "net/berth-webhook" {
						t.Errorf("%s %s: inject-ca-from %q, want net/berth-webhook", kind, w.GetName(), got)
					}
				}
			}
			var dep appsv1.Deployment
			for _, o := range byKind["Deployment"] {
				if o.GetName() == "berth-controller" {
					if err := fromUnstructured(o, &dep); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := dep.Spec.Template.Spec.Containers[0]
			if !slices.Contains(c.Args, "--cert-source=files") || !slices.Contains(c.Args, "--cert-dir=/certs") {
				t.Errorf("berth-controller args %v: want the certificate read from /certs", c.Args)
			}
			mounted := false
			for _, v := range dep.Spec.Template.Spec.Volumes {
				if v.Secret != nil && v.Secret.SecretName == secret {
					for _, m := range c.VolumeMounts {
						mounted = mounted || (m.Name == v.Name && m.MountPath == "/certs")
					}
				}
			}
			if !mounted {
				t.Errorf("the Certificate's Secret %s is not mounted at /certs: volumes %+v, mounts %+v", secret, dep.Spec.Template.Spec.Volumes, c.VolumeMounts)
			}
		})
	}
}

func decodeAll(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(out, "\n---\n") {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatalf("rendered chart: %v", err)
		}
		if len(o.Object) > 0 {
			objs = append(objs, o)
		}
	}
	return objs
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}
