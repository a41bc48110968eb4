package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/tests/controlplane"
	berthwebhook "github.com/berth-io/berth/webhook"
)

// nodes registers two workers, one per rack, each with four VFs of the
// SR-IOV resource, standing in for kubelets.
func (d *demo) nodes(ctx context.Context) error {
	step("registering nodes worker-1 (rack r1) and worker-2 (rack r2), each with 4 berth.io/sriov_netdevice VFs")
	for i, rack := range []string{"r1", "r2"} {
		name := fmt.Sprintf("worker-%d", i+1)
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := d.cp.CreateNode(nctx, name, map[string]string{"rack": rack}, corev1.ResourceList{"berth.io/sriov_netdevice": *resourceQty(4)})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// workloads creates a Deployment and a StatefulSet and prints what every
// pod was given at admission; it returns the pods.
func (d *demo) workloads(ctx context.Context) ([]corev1.Pod, error) {
	step("creating Deployment web (3 pods labelled tier=storage: the storage-tier policy attaches them) and StatefulSet db (2 pods asking for network storage in the Multus annotation)")
	labelsWeb := map[string]string{"app": "web", "tier": "storage"}
	labelsDB := map[string]string{"app": "db"}
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}, TerminationGracePeriodSeconds: ptr.To[int64](0)}
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labelsWeb},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labelsWeb}, Spec: spec},
		}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labelsDB}, PodManagementPolicy: appsv1.ParallelPodManagement,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labelsDB, Annotations: map[string]string{nadv1.NetworksAnnotation: "storage"}}, Spec: spec},
		}},
	}
	for _, o := range objs {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.cp.Client.Create(cctx, o)
		cancel()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	pods, err := d.waitPods(ctx, 5)
	if err != nil {
		return nil, err
	}
	step("what every pod was given at admission (berth.io/assignment), and where the scheduler put it")
	if err := printPods(pods); err != nil {
		return nil, err
	}
	step("kubectl get ipallocations (one object per reserved address; its name is the lock)")
	if err := d.kubectl(ctx, "get", "ipallocations"); err != nil {
		return nil, err
	}
	return pods, nil
}

// printPods prints a row per pod interface: node, network, addresses,
// pools and the policies that decided.
func printPods(pods []corev1.Pod) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tNODE\tINTERFACE\tNETWORK\tADDRESSES\tPOOLS\tPOLICIES")
	for _, p := range pods {
		a, err := assignment.Parse(p.Annotations[assignment.Annotation])
		if err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		node := p.Spec.NodeName
		if node == "" {
			node = "(pending)"
		}
		for _, itf := range a.Interfaces {
			var addrs, pools []string
			for _, addr := range itf.Addresses {
				addrs = append(addrs, addr.Address)
				pools = append(pools, addr.Pool)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, node, itf.Interface, itf.Network, strings.Join(addrs, ","), strings.Join(pools, ","), p.Annotations[assignment.PolicyAnnotation])
		}
	}
	return tw.Flush()
}

func resourceQty(n int64) *resource.Quantity { return resource.NewQuantity(n, resource.DecimalSI) }

// waitPods waits until n pods of web and db carry an assignment and are
// scheduled (or 30 s pass for the scheduling part).
func (d *demo) waitPods(ctx context.Context, n int) ([]corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	scheduledBy := time.Now().Add(30 * time.Second)
	for {
		var list corev1.PodList
		if err := d.cp.Client.List(ctx, &list, client.InNamespace("default"), client.HasLabels{"app"}); err != nil {
			return nil, err
		}
		var ready []corev1.Pod
		scheduled := true
		for _, p := range list.Items {
			if p.Labels["app"] != "web" && p.Labels["app"] != "db" || p.DeletionTimestamp != nil {
				continue
			}
			if _, ok := p.Annotations[assignment.Annotation]; ok {
				ready = append(ready, p)
				scheduled = scheduled && p.Spec.NodeName != ""
			}
		}
		if len(ready) >= n && (scheduled || time.Now().After(scheduledBy)) {
			sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d pods with addresses (have %d): %w", n, len(ready), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startBerth runs the berth-controller binary (the admission webhook and
// every controller) against the demo's control plane, as its Deployment
// would: the webhook configurations point at it on loopback and it patches
// their caBundle with the CA it makes for itself. It runs beside the
// control plane, so KEEP=1 leaves it running too.
func (d *demo) startBerth(ctx context.Context) error {
	step("starting berth-controller: admission webhook, allocator, policies, Network and Coordinator controllers")
	bin, err := d.berthController(ctx)
	if err != nil {
		return err
	}
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	const ns = "berth-system"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.cp.Client.Create(cctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	mut, val := berthwebhook.Configurations(berthwebhook.ConfigOptions{
		Namespace: ns, URL: "https://127.0.0.1:" + strconv.Itoa(ports[0]), ServiceAccount: "system:serviceaccount:" + ns + ":berth-controller",
	})
	for _, o := range []client.Object{mut, val} {
		if err := d.cp.Client.Create(cctx, o); err != nil {
			return fmt.Errorf("creating the webhook configuration: %w", err)
		}
	}
	args := []string{
		"--namespace=" + ns, "--webhook-host=127.0.0.1", "--webhook-port=" + strconv.Itoa(ports[0]),
		"--cert-ips=127.0.0.1", "--webhook-configuration=" + berthwebhook.ConfigurationName,
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--leader-elect=false",
	}
	// It acts as its ServiceAccount with the RBAC Berth ships, as installed.
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	if err := d.cp.Apply(cctx, filepath.Join(root, "manifests", "controller", "rbac.yaml")); err != nil {
		return err
	}
	kubeconfig := filepath.Join(d.cp.Dir, "berth-controller.kubeconfig")
	user, groups := controlplane.ServiceAccountUser(ns, "berth-controller")
	if err := d.cp.WriteKubeconfigAs(kubeconfig, user, groups...); err != nil {
		return err
	}
	if err := d.cp.Spawn("berth-controller", bin, args, []string{"KUBECONFIG=" + kubeconfig}); err != nil {
		return err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/readyz"
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("berth-controller ready (log: %s): webhook https://127.0.0.1:%d, CA in secret %s/berth-webhook-tls, caBundle patched\n",
					d.cp.Logs("berth-controller"), ports[0], ns)
				return nil
			}
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("berth-controller did not become ready: %w; see %s", rctx.Err(), d.cp.Logs("berth-controller"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// berthController is bin/berth-controller of `make build`, or one built
// now into the demo's directory.
func (d *demo) berthController(ctx context.Context) (string, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "berth-controller")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	bin = filepath.Join(d.cp.Dir, "bin", "berth-controller")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/berth-controller")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building berth-controller: %w\n%s", err, out)
	}
	return bin, nil
}
