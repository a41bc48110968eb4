// Package show prints Networks and the NetworkAttachmentDefinitions Berth
// generated for them, for people: the demo, a support bundle, a CLI.
package show

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network"
	"github.com/berth-io/berth/network/render"
)

// NADs writes, for every Network the reader sees (all namespaces with
// client.InNamespace("") or none), its phase and its NAD: name, the
// resourceName annotation if any, and the CNI configuration as indented
// JSON. A Network whose NAD is missing says so with its status message.
func NADs(ctx context.Context, r client.Reader, w io.Writer, opts ...client.ListOption) error {
	var list berthv1.NetworkList
	if err := r.List(ctx, &list, opts...); err != nil {
		return fmt.Errorf("listing Networks: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b berthv1.Network) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i := range list.Items {
		nw := &list.Items[i]
		fmt.Fprintf(w, "Network %s/%s (%s): phase %s\n", nw.Namespace, nw.Name, nw.Spec.CNIType, phase(nw))
		name := network.NADName(nw)
		nad := &nadv1.NetworkAttachmentDefinition{}
		err := r.Get(ctx, client.ObjectKey{Namespace: nw.Namespace, Name: name}, nad)
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(w, "  no NetworkAttachmentDefinition %s/%s yet: %s\n\n", nw.Namespace, name, nw.Status.Message)
			continue
		case err != nil:
			return fmt.Errorf("reading NetworkAttachmentDefinition %s/%s: %w", nw.Namespace, name, err)
		}
		fmt.Fprintf(w, "  NetworkAttachmentDefinition %s/%s", nad.Namespace, nad.Name)
		if rn := nad.Annotations[nadv1.ResourceNameAnnotation]; rn != "" {
			fmt.Fprintf(w, ", %s: %s", nadv1.ResourceNameAnnotation, rn)
		}
		fmt.Fprintln(w)
		pretty, err := render.Pretty(nad.Spec.Config)
		if err != nil {
			pretty = nad.Spec.Config // show what is there, even if it is not JSON
		}
		fmt.Fprintf(w, "%s\n\n", pretty)
	}
	return nil
}

func phase(nw *berthv1.Network) string {
	if nw.Status.Phase == "" {
		return "(not reconciled yet)"
	}
	return string(nw.Status.Phase)
}
