package podmutator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
)

// maxAffinityTerms bounds the node selector terms the webhook writes: the
// terms of several node-bound pools multiply (each pool's terms are ORed,
// pools are ANDed), and a pod spec must stay readable and small.
const maxAffinityTerms = 256

// rawPod is the pod as the API server sent it, decoded without a Go type so
// that a field this build does not know survives the round trip: the patch
// is the difference between it and its edited copy, and touches only what
// Berth owns (annotations, the first container's resources, the required
// node affinity).
type rawPod struct {
	obj map[string]any
}

func decodeRaw(raw []byte) (*rawPod, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers stay as written, so they diff as unchanged
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	return &rawPod{obj: obj}, nil
}

func (r *rawPod) encode() ([]byte, error) {
	data, err := json.Marshal(r.obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the pod: %w", err)
	}
	return data, nil
}

// child returns obj[key] as a map, creating it when absent or null.
func child(obj map[string]any, key string) map[string]any {
	if m, ok := obj[key].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	obj[key] = m
	return m
}

// setAnnotation sets (value != "") or removes (value == "") an annotation.
func (r *rawPod) setAnnotation(key, value string) {
	meta := child(r.obj, "metadata")
	if value == "" {
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, key)
		}
		return
	}
	child(meta, "annotations")[key] = value
}

// addResources makes the first container request and limit at least n of
// each resource. An amount the pod already asks for is kept when larger:
// someone who wrote the request by hand wrote it for the same attachments,
// and adding to it would ask for devices nobody uses.
func (r *rawPod) addResources(want map[corev1.ResourceName]int64) error {
	if len(want) == 0 {
		return nil
	}
	containers, _ := child(r.obj, "spec")["containers"].([]any)
	if len(containers) == 0 {
		return invalid("spec.containers: the pod has no container to request %v from", keys(want))
	}
	first, ok := containers[0].(map[string]any)
	if !ok {
		return invalid("spec.containers[0]: not an object")
	}
	res := child(first, "resources")
	requests, limits := child(res, "requests"), child(res, "limits")
	for _, name := range keys(want) {
		n := want[corev1.ResourceName(name)]
		for _, field := range []string{"requests", "limits"} {
			list := requests
			if field == "limits" {
				list = limits
			}
			if have, ok := list[name]; ok {
				q, err := resource.ParseQuantity(fmt.Sprint(have))
				if err != nil {
					return invalid("spec.containers[0].resources.%s[%s]: %v", field, name, err)
				}
				if q.Value() > n {
					n = q.Value()
				}
			}
		}
		// Extended resources cannot be overcommitted: request == limit.
		requests[name] = resource.NewQuantity(n, resource.DecimalSI).String()
		limits[name] = requests[name]
	}
	return nil
}

func keys(m map[corev1.ResourceName]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// requireNodes ANDs the pod's required node affinity with each pool's node
// terms. Node selector terms are ORed, so the result is the product: every
// pod term extended with every pool term, pool after pool.
func (r *rawPod) requireNodes(pools []*berthv1.IPPool) error {
	if len(pools) == 0 {
		return nil
	}
	na := child(child(child(r.obj, "spec"), "affinity"), "nodeAffinity")
	required := child(na, "requiredDuringSchedulingIgnoredDuringExecution")
	existing, _ := required["nodeSelectorTerms"].([]any)
	var terms []map[string]any
	for _, t := range existing {
		if m, ok := t.(map[string]any); ok {
			terms = append(terms, m)
		}
	}
	for _, pool := range pools {
		poolTerms, err := poolNodeTerms(pool)
		if err != nil {
			return err
		}
		if terms == nil {
			terms = poolTerms
			continue
		}
		if len(terms)*len(poolTerms) > maxAffinityTerms {
			return invalid("spec.affinity.nodeAffinity: binding the pod to the nodes of pool %q would take %d node selector terms, more than %d", pool.Name, len(terms)*len(poolTerms), maxAffinityTerms)
		}
		var product []map[string]any
		for _, t := range terms {
			for _, pt := range poolTerms {
				product = append(product, andTerms(t, pt))
			}
		}
		terms = product
	}
	out := make([]any, len(terms))
	for i, t := range terms {
		out[i] = t
	}
	required["nodeSelectorTerms"] = out
	return nil
}

// andTerms is a copy of t (unknown keys included) whose requirements also
// hold extra's.
func andTerms(t, extra map[string]any) map[string]any {
	out := make(map[string]any, len(t)+2)
	for k, v := range t {
		out[k] = v
	}
	for _, key := range []string{"matchExpressions", "matchFields"} {
		add, _ := extra[key].([]any)
		if len(add) == 0 {
			continue
		}
		have, _ := t[key].([]any)
		out[key] = append(append([]any{}, have...), add...)
	}
	return out
}

// poolNodeTerms are the node selector terms, ORed, of the nodes a pool
// serves: one for its node selector, one per node name (the API allows a
// single value per metadata.name requirement).
func poolNodeTerms(pool *berthv1.IPPool) ([]map[string]any, error) {
	var terms []map[string]any
	if sel := pool.Spec.NodeSelector; sel != nil {
		var exprs []corev1.NodeSelectorRequirement
		for _, k := range sortedKeys(sel.MatchLabels) {
			exprs = append(exprs, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{sel.MatchLabels[k]}})
		}
		for i, e := range sel.MatchExpressions {
			op, ok := map[metav1.LabelSelectorOperator]corev1.NodeSelectorOperator{
				metav1.LabelSelectorOpIn: corev1.NodeSelectorOpIn, metav1.LabelSelectorOpNotIn: corev1.NodeSelectorOpNotIn,
				metav1.LabelSelectorOpExists: corev1.NodeSelectorOpExists, metav1.LabelSelectorOpDoesNotExist: corev1.NodeSelectorOpDoesNotExist,
			}[e.Operator]
			if !ok {
				return nil, invalid("ippool %q: spec.nodeSelector.matchExpressions[%d].operator: %q is not a label selector operator", pool.Name, i, e.Operator)
			}
			exprs = append(exprs, corev1.NodeSelectorRequirement{Key: e.Key, Operator: op, Values: e.Values})
		}
		terms = append(terms, map[string]any{"matchExpressions": toAny(exprs)})
	}
	for _, name := range pool.Spec.NodeNames {
		terms = append(terms, map[string]any{"matchFields": toAny([]corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{name}}})})
	}
	return terms, nil
}

// toAny converts typed requirements to the generic form of the raw pod.
func toAny(reqs []corev1.NodeSelectorRequirement) []any {
	out := make([]any, 0, len(reqs))
	for _, r := range reqs {
		m := map[string]any{"key": r.Key, "operator": string(r.Operator)}
		if len(r.Values) > 0 {
			vals := make([]any, len(r.Values))
			for i, v := range r.Values {
				vals[i] = v
			}
			m["values"] = vals
		}
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
