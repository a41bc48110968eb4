package multus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

// Driver attaches pods the way Multus does, reading their annotations and
// the NetworkAttachmentDefinitions from the API server.
type Driver struct {
	Client  client.Client
	Runtime Runtime
	// ClusterNetwork, when set, is attached as eth0 to pods without a
	// default-network annotation, as Multus does with its clusterNetwork.
	ClusterNetwork *Attachment
}

// Attached is one interface a pod got.
type Attached struct {
	Network string
	IfName  string
	Result  *current.Result
}

// Result is what Attach made, in order.
type Result struct {
	Interfaces []Attached
}

// Attach reads the pod's networks with c and runs each chain into
// netnsPath, with plugins from binDirs run in the caller's netns.
func Attach(ctx context.Context, c client.Client, pod *corev1.Pod, netnsPath string, binDirs []string) (Result, error) {
	d := &Driver{Client: c, Runtime: Runtime{BinDirs: binDirs}}
	return d.Attach(ctx, pod, netnsPath)
}

// Detach undoes Attach.
func Detach(ctx context.Context, c client.Client, pod *corev1.Pod, netnsPath string, binDirs []string) error {
	d := &Driver{Client: c, Runtime: Runtime{BinDirs: binDirs}}
	return d.Detach(ctx, pod, netnsPath)
}

// Ref names pod for the runtime.
func Ref(pod *corev1.Pod) PodRef {
	return PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}
}

// Attachments resolves the pod's delegates as Multus does: the
// default-network annotation, when set, else the cluster network, as eth0;
// then each element of the networks annotation as its interface, or
// net<N> counting from 1.
func (d *Driver) Attachments(ctx context.Context, pod *corev1.Pod) ([]Attachment, error) {
	var elems []nadv1.NetworkSelectionElement
	var names []string
	if v := pod.Annotations[nadv1.DefaultNetworkAnnotation]; v != "" {
		def, err := nadv1.ParseNetworkSelection(v, pod.Namespace)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if len(def) != 1 {
			return nil, fmt.Errorf("pod %s/%s: annotation %s must name one network, it names %d", pod.Namespace, pod.Name, nadv1.DefaultNetworkAnnotation, len(def))
		}
		elems = append(elems, def[0])
		names = append(names, "eth0")
	}
	var out []Attachment
	if len(elems) == 0 && d.ClusterNetwork != nil {
		eth0 := *d.ClusterNetwork
		eth0.IfName = "eth0"
		out = append(out, eth0)
	}
	extra, err := nadv1.ParseNetworkSelection(pod.Annotations[nadv1.NetworksAnnotation], pod.Namespace)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for i, e := range extra {
		elems = append(elems, e)
		name := e.InterfaceRequest
		if name == "" {
			name = fmt.Sprintf("net%d", i+1)
		}
		names = append(names, name)
	}
	for i, e := range elems {
		nad := &nadv1.NetworkAttachmentDefinition{}
		getCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := d.Client.Get(getCtx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, nad)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: network %s: %w", pod.Namespace, pod.Name, e.Key(), err)
		}
		out = append(out, Attachment{
			Network: e.Key(),
			IfName:  names[i],
			Config:  []byte(nad.Spec.Config),
			CNIArgs: e.CNIArgs,
			IPs:     e.IPRequest,
			MAC:     e.MacRequest,
		})
	}
	return out, nil
}

// Attach runs ADD of every attachment in order; when one fails, the ones
// already made are deleted again (as Multus does) and the error returned.
func (d *Driver) Attach(ctx context.Context, pod *corev1.Pod, netnsPath string) (Result, error) {
	atts, err := d.Attachments(ctx, pod)
	if err != nil {
		return Result{}, err
	}
	ref := Ref(pod)
	var res Result
	for i, a := range atts {
		r, err := d.Runtime.Add(ctx, ref, netnsPath, a)
		if err != nil {
			var errs []error
			errs = append(errs, err)
			for j := i; j >= 0; j-- {
				if derr := d.Runtime.Del(ctx, ref, netnsPath, atts[j]); derr != nil {
					errs = append(errs, fmt.Errorf("cleaning up: %w", derr))
				}
			}
			return Result{}, errors.Join(errs...)
		}
		res.Interfaces = append(res.Interfaces, Attached{Network: a.Network, IfName: a.IfName, Result: r})
	}
	return res, nil
}

// Check runs CHECK of every attachment.
func (d *Driver) Check(ctx context.Context, pod *corev1.Pod, netnsPath string) error {
	atts, err := d.Attachments(ctx, pod)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if err := d.Runtime.Check(ctx, Ref(pod), netnsPath, a); err != nil {
			return err
		}
	}
	return nil
}

// Detach runs DEL of every attachment, last first, and reports all
// failures.
func (d *Driver) Detach(ctx context.Context, pod *corev1.Pod, netnsPath string) error {
	atts, err := d.Attachments(ctx, pod)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(atts) - 1; i >= 0; i-- {
		errs = append(errs, d.Runtime.Del(ctx, Ref(pod), netnsPath, atts[i]))
	}
	return errors.Join(errs...)
}

// NetworkStatus is one entry of the network-status annotation Multus
// writes after attaching (the NPWG specification's fields Berth uses).
type NetworkStatus struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	Default   bool     `json:"default,omitempty"`
	Gateway   []string `json:"gateway,omitempty"`
}

// Status renders what Attach made as Multus's network-status: the eth0
// entry is the default one.
func (r Result) Status() []NetworkStatus {
	var out []NetworkStatus
	for _, a := range r.Interfaces {
		st := NetworkStatus{Name: a.Network, Interface: a.IfName, Default: a.IfName == "eth0"}
		for _, itf := range a.Result.Interfaces {
			if itf.Name == a.IfName && itf.Sandbox != "" {
				st.MAC = itf.Mac
			}
		}
		for _, ipc := range a.Result.IPs {
			st.IPs = append(st.IPs, ipc.Address.IP.String())
			if ipc.Gateway != nil {
				st.Gateway = append(st.Gateway, ipc.Gateway.String())
			}
		}
		out = append(out, st)
	}
	return out
}

// WriteStatus records res on the pod in the network-status annotation, as
// Multus does once the sandbox is up.
func (d *Driver) WriteStatus(ctx context.Context, pod *corev1.Pod, res Result) error {
	data, err := json.Marshal(res.Status())
	if err != nil {
		return fmt.Errorf("encoding the network status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nadv1.NetworkStatusAnnotation: string(data)}}})
	if err != nil {
		return fmt.Errorf("encoding the patch of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("writing the network status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
