package validate

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/berth-io/berth/api/cniconf"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/network/render"
)

// Path is where the webhook server serves Network validation; the
// ValidatingWebhookConfiguration must point there.
const Path = "/validate-berth-io-v1alpha1-network"

// Validator is the admission validator of Networks: Static, plus the checks
// that read the cluster. It implements controller-runtime's
// admission.Validator for *Network.
type Validator struct {
	// Reader reads IPPools and Networks, normally the manager's cache.
	Reader client.Reader
	// APIReader, when set, is asked when Reader does not find a pool, so a
	// pool created a moment ago is not reported missing because the cache
	// lags behind, and lists the Networks whose NAD names must not collide.
	APIReader client.Reader
}

var _ admission.Validator[*berthv1.Network] = &Validator{}

// SetupWebhookWithManager registers the validator at Path on mgr's webhook
// server.
func (v *Validator) SetupWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &berthv1.Network{}).
		WithValidator(v).
		WithValidatorCustomPath(Path).
		Complete()
}

// ValidateCreate checks a new Network.
func (v *Validator) ValidateCreate(ctx context.Context, nw *berthv1.Network) (admission.Warnings, error) {
	return v.Validate(ctx, nw, nil)
}

// ValidateUpdate checks a changed Network.
func (v *Validator) ValidateUpdate(ctx context.Context, old, nw *berthv1.Network) (admission.Warnings, error) {
	return v.Validate(ctx, nw, old)
}

// ValidateDelete allows every deletion: the NAD goes with the Network.
func (v *Validator) ValidateDelete(context.Context, *berthv1.Network) (admission.Warnings, error) {
	return nil, nil
}

// Validate returns a 422 Invalid error listing every bad field of nw, or a
// 500 when the cluster could not be read. old is the previous object on
// update, nil on create: a pool that existed when the Network was written
// and was deleted since is not held against an unrelated edit (the
// controller reports it in the status instead).
func (v *Validator) Validate(ctx context.Context, nw, old *berthv1.Network) (admission.Warnings, error) {
	errs := Static(nw)
	perrs, err := v.pools(ctx, nw, old)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("validating network %s/%s: %w", nw.Namespace, nw.Name, err))
	}
	errs = append(errs, perrs...)
	nerrs, err := v.nadName(ctx, nw)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("validating network %s/%s: %w", nw.Namespace, nw.Name, err))
	}
	errs = append(errs, nerrs...)
	warnings := Warnings(nw)
	if len(errs) > 0 {
		return warnings, apierrors.NewInvalid(schema.GroupKind{Group: berthv1.GroupVersion.Group, Kind: "Network"}, nw.Name, errs)
	}
	return warnings, nil
}

// pools checks that each pool of spec.ippools exists, has the family of the
// list it is in, and may serve this Network.
func (v *Validator) pools(ctx context.Context, nw, old *berthv1.Network) (field.ErrorList, error) {
	sel := nw.Spec.IPPools
	if sel == nil {
		return nil, nil
	}
	var before []string
	if old != nil {
		before = network.Pools(old)
	}
	var errs field.ErrorList
	for _, f := range []struct {
		fam   string
		v6    bool
		names []string
	}{{"ipv4", false, sel.IPv4}, {"ipv6", true, sel.IPv6}} {
		for i, name := range f.names {
			p := field.NewPath("spec", "ippools", f.fam).Index(i)
			pool, err := v.pool(ctx, name)
			if err != nil {
				return nil, err
			}
			if pool == nil {
				if !slices.Contains(before, name) {
					errs = append(errs, field.Invalid(p, name, fmt.Sprintf("IPPool %q does not exist", name)))
				}
				continue
			}
			subnet, err := netip.ParsePrefix(pool.Spec.Subnet)
			if err != nil {
				errs = append(errs, field.Invalid(p, name, fmt.Sprintf("IPPool %q has no valid subnet (%q)", name, pool.Spec.Subnet)))
				continue
			}
			if subnet.Addr().Is6() != f.v6 {
				errs = append(errs, field.Invalid(p, name, fmt.Sprintf("IPPool %q is an %s pool (%s), not %s", name, family(subnet), pool.Spec.Subnet, strings.ToUpper(f.fam[:2])+f.fam[2:])))
			}
			if !network.PoolAllows(pool, nw) {
				errs = append(errs, field.Invalid(p, name, fmt.Sprintf("IPPool %q serves only the networks %v", name, pool.Spec.Networks)))
			}
		}
	}
	return errs, nil
}

func family(p netip.Prefix) string {
	if p.Addr().Is6() {
		return "IPv6"
	}
	return "IPv4"
}

// pool reads an IPPool, nil when it does not exist.
func (v *Validator) pool(ctx context.Context, name string) (*berthv1.IPPool, error) {
	pool := &berthv1.IPPool{}
	err := v.Reader.Get(ctx, client.ObjectKey{Name: name}, pool)
	if apierrors.IsNotFound(err) && v.APIReader != nil {
		err = v.APIReader.Get(ctx, client.ObjectKey{Name: name}, pool)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading IPPool %q: %w", name, err)
	}
	return pool, nil
}

// nadName refuses a NAD name another Network of the namespace generates:
// two Networks would rewrite one NetworkAttachmentDefinition in turn.
func (v *Validator) nadName(ctx context.Context, nw *berthv1.Network) (field.ErrorList, error) {
	name := network.NADName(nw)
	if name == "" {
		return nil, nil // generateName: the name is not known yet
	}
	// Networks are written rarely and a cache a moment behind would let two
	// of them claim one name: ask the API server when possible.
	r := v.Reader
	if v.APIReader != nil {
		r = v.APIReader
	}
	var list berthv1.NetworkList
	if err := r.List(ctx, &list, client.InNamespace(nw.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Networks in namespace %q: %w", nw.Namespace, err)
	}
	p := field.NewPath("metadata", "name")
	if _, ok := nw.Annotations[network.AnnotationNADName]; ok {
		p = field.NewPath("metadata", "annotations").Key(network.AnnotationNADName)
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.Name != nw.Name && network.NADName(other) == name {
			return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("NetworkAttachmentDefinition %q is already generated by Network %q", name, other.Name))}, nil
		}
	}
	return nil, nil
}

// Warnings are things a Network may do that are probably not meant.
func Warnings(nw *berthv1.Network) admission.Warnings {
	var w admission.Warnings
	if c := nw.Spec.SRIOV; nw.Spec.CNIType == berthv1.CNITypeSRIOV && c != nil && c.VLANID == 0 && c.VLANQoS != 0 {
		w = append(w, "spec.sriov.vlanQoS is ignored without spec.sriov.vlanID")
	}
	if c := nw.Spec.Custom; nw.Spec.CNIType == berthv1.CNITypeCustom && c != nil {
		if cc, err := render.ParseCustom(c.Config); err == nil {
			if t, ok := cc.MainIPAMType(); ok && t != "" && t != cniconf.IPAMType {
				// Since the webhook serves only networks using berth-ipam,
				// such a network gets no reservation at all.
				w = append(w, fmt.Sprintf("spec.custom.config: the first plugin's IPAM is %q, not %s: Berth reserves no addresses for this network's pods, that IPAM gives them theirs (spec.ippools and the IPPools serving the network are not used)", t, cniconf.IPAMType))
			}
		}
	}
	if nw.Spec.Coordinator != nil && nw.Spec.Coordinator.Disabled && nw.Spec.Coordinator.Mode != nil {
		w = append(w, "spec.coordinator.mode is ignored: spec.coordinator.disabled leaves berth-coordinator out")
	}
	return w
}
