// Package webhook assembles Berth's admission webhooks: it registers the
// handlers of its sub-packages on a controller-runtime webhook server and
// builds the webhook configurations the API server needs, from one place, so
// that the manifests, the Helm chart and the tests agree.
package webhook

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	netvalidate "github.com/berth-io/berth/network/validate"
	"github.com/berth-io/berth/webhook/podvalidator"
)

// Names of the webhook configurations and paths of the handlers.
const (
	ConfigurationName = "berth" // both the mutating and the validating one

	PathMutatePod             = "/mutate-pod"
	PathValidatePod           = "/validate-pod"
	PathValidateIPPool        = "/validate-ippool"
	PathValidateAttachmentPol = "/validate-attachmentpolicy"
	PathValidateNetwork       = netvalidate.Path
	PathValidateIPAllocation  = "/validate-ipallocation"
)

// DefaultTimeoutSeconds is the API server's wait for an answer: well under
// its own request timeout, so a slow webhook fails the call, not the client.
const DefaultTimeoutSeconds = 10

// ConfigOptions say where the API server finds the webhook.
type ConfigOptions struct {
	// Namespace is Berth's own; it and kube-system are never sent to the
	// pod webhooks (invariant 7).
	Namespace string
	// Service is the webhook's Service (path is set per webhook), or nil
	// to use URL.
	Service *admissionregistrationv1.ServiceReference
	// URL is the base URL ("https://127.0.0.1:9443") when Service is nil.
	URL string
	// CABundle verifies the serving certificate; empty when cert-manager's
	// cainjector or the certs manager fills it in.
	CABundle []byte
	// ServiceAccount is Berth's username
	// (system:serviceaccount:<namespace>:<name>).
	ServiceAccount string
	// TimeoutSeconds: DefaultTimeoutSeconds when zero.
	TimeoutSeconds int32
}

// Configurations builds the mutating and validating webhook configurations.
//
// Choices worth a word: failurePolicy Fail everywhere (a pod that needs a
// Berth network must not start without its addresses; kube-system and
// Berth's namespace are excluded so the cluster and Berth itself can always
// start); sideEffects NoneOnDryRun for pods, because a real CREATE reserves
// addresses and a dry run does not; reinvocationPolicy Never, because a
// second call would reserve a second set of addresses for the same pod (what
// later webhooks do cannot change what Berth decided: the validating webhook
// guards the annotations). Pod UPDATEs reach the webhook only when a
// protected annotation changes: a CEL match condition filters them in the
// API server, so the kubelet's status updates never wait for Berth.
func Configurations(o ConfigOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = DefaultTimeoutSeconds
	}
	fail := admissionregistrationv1.Fail
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	exclude := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", o.Namespace},
	}}}
	notBerth := admissionregistrationv1.MatchCondition{Name: "not-berth", Expression: fmt.Sprintf("request.userInfo.username != %q", o.ServiceAccount)}
	rule := func(group string, resources []string, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: ptr.To(admissionregistrationv1.AllScopes),
		}}}
	}
	berthRule := func(resource string, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{berthv1.GroupVersion.Group}, APIVersions: []string{berthv1.GroupVersion.Version}, Resources: []string{resource}, Scope: ptr.To(admissionregistrationv1.AllScopes),
		}}}
	}
	versions := []string{"v1"}

	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "pods.berth.io",
			ClientConfig:            o.clientConfig(PathMutatePod),
			Rules:                   rule("", []string{"pods"}, admissionregistrationv1.Create),
			FailurePolicy:           &fail,
			SideEffects:             &noneOnDryRun,
			TimeoutSeconds:          &o.TimeoutSeconds,
			NamespaceSelector:       exclude,
			MatchConditions:         []admissionregistrationv1.MatchCondition{notBerth},
			ReinvocationPolicy:      &never,
			AdmissionReviewVersions: versions,
		}},
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:              "pods.validate.berth.io",
			ClientConfig:      o.clientConfig(PathValidatePod),
			Rules:             rule("", []string{"pods", "pods/status"}, admissionregistrationv1.Update),
			FailurePolicy:     &fail,
			SideEffects:       &none,
			TimeoutSeconds:    &o.TimeoutSeconds,
			NamespaceSelector: exclude,
			MatchConditions: []admissionregistrationv1.MatchCondition{notBerth,
				{Name: "protected-annotation-changed", Expression: protectedChanged()}},
			AdmissionReviewVersions: versions,
		}, {
			Name:                    "ippools.validate.berth.io",
			ClientConfig:            o.clientConfig(PathValidateIPPool),
			Rules:                   berthRule("ippools", admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete),
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: versions,
		}, {
			Name:                    "attachmentpolicies.validate.berth.io",
			ClientConfig:            o.clientConfig(PathValidateAttachmentPol),
			Rules:                   berthRule("attachmentpolicies", admissionregistrationv1.Create, admissionregistrationv1.Update),
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: versions,
		}, {
			Name:                    "networks.validate.berth.io",
			ClientConfig:            o.clientConfig(PathValidateNetwork),
			Rules:                   berthRule("networks", admissionregistrationv1.Create, admissionregistrationv1.Update),
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: versions,
		}, {
			// Berth's own binds and releases never reach it: only a hand
			// that deletes or edits the lock of an address in use.
			Name:                    "ipallocations.validate.berth.io",
			ClientConfig:            o.clientConfig(PathValidateIPAllocation),
			Rules:                   berthRule("ipallocations", admissionregistrationv1.Update, admissionregistrationv1.Delete),
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &o.TimeoutSeconds,
			MatchConditions:         []admissionregistrationv1.MatchCondition{notBerth},
			AdmissionReviewVersions: versions,
		}},
	}
	return mutating, validating
}

func (o *ConfigOptions) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.Service != nil {
		svc := *o.Service
		svc.Path = ptr.To(path)
		cc.Service = &svc
		return cc
	}
	cc.URL = ptr.To(strings.TrimSuffix(o.URL, "/") + path)
	return cc
}

// protectedChanged is CEL true when an UPDATE adds, removes or changes one
// of the annotations only Berth may write after CREATE.
func protectedChanged() string {
	var keys []string
	for _, k := range podvalidator.Protected {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	has := func(obj string) string {
		return fmt.Sprintf("has(%s.metadata.annotations) && k in %s.metadata.annotations", obj, obj)
	}
	return fmt.Sprintf("[%s].exists(k, (%s) != (%s) || (%s && %s && object.metadata.annotations[k] != oldObject.metadata.annotations[k]))",
		strings.Join(keys, ", "), has("object"), has("oldObject"), has("object"), has("oldObject"))
}
