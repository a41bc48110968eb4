package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berth-io/berth/api/assignment"
	nadv1 "github.com/berth-io/berth/api/nad/v1"
	"github.com/berth-io/berth/cmd/berth-controller/app"
	berthwebhook "github.com/berth-io/berth/webhook"
)

// workloads runs berth-controller (the admission webhook and every
// controller) against the demo's control plane, the API server calling it
// over TLS with the CA it made for itself, then creates a Deployment and a
// StatefulSet and prints what every pod was given.
func (d *demo) workloads(ctx context.Context) error {
	step("starting berth-controller: admission webhook, allocator, policies, Network and Coordinator controllers")
	stop, err := d.startBerth(ctx)
	if err != nil {
		return err
	}
	defer stop()

	for i, rack := range []string{"r1", "r2"} {
		name := fmt.Sprintf("worker-%d", i+1)
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := d.cp.CreateNode(nctx, name, map[string]string{"rack": rack}, corev1.ResourceList{"berth.io/sriov_netdevice": *resourceQty(4)})
		cancel()
		if err != nil && !apierrors.IsAlreadyExists(errors.Unwrap(err)) && !strings.Contains(err.Error(), "already exists") {
			return err
		}
	}

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
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	pods, err := d.waitPods(ctx, 5)
	if err != nil {
		return err
	}
	step("what every pod was given at admission (berth.io/assignment), and where the scheduler put it")
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
	if err := tw.Flush(); err != nil {
		return err
	}
	step("kubectl get ipallocations (one object per reserved address; its name is the lock)")
	return d.kubectl(ctx, "get", "ipallocations")
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

// startBerth runs berth-controller in this process, on loopback, with the
// webhook configurations pointing at it. stop removes the configurations
// (a control plane left running must not call a webhook that is gone) and
// stops the controller.
func (d *demo) startBerth(ctx context.Context) (stop func(), err error) {
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	const ns = "berth-system"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.cp.Client.Create(cctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	mut, val := berthwebhook.Configurations(berthwebhook.ConfigOptions{
		Namespace: ns, URL: "https://127.0.0.1:" + strconv.Itoa(ports[0]), ServiceAccount: "system:serviceaccount:" + ns + ":berth-controller",
	})
	for _, o := range []client.Object{mut, val} {
		if err := d.cp.Client.Create(cctx, o); err != nil {
			return nil, fmt.Errorf("creating the webhook configuration: %w", err)
		}
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(runCtx, app.Config{
			RestConfig: rest.CopyConfig(d.cp.Config), Namespace: ns, ServiceAccount: "berth-controller",
			WebhookHost: "127.0.0.1", WebhookPort: ports[0],
			CertSource: app.CertsSelfManaged, CertSecret: "berth-webhook-tls", CertIPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			WebhookConfiguration: berthwebhook.ConfigurationName, MetricsAddr: "0", ProbeAddr: "127.0.0.1:" + strconv.Itoa(ports[1]),
			LeaderElection: false, Metrics: prometheus.NewRegistry(), InProcessReplica: true,
		})
	}()
	removeConfigs := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, o := range []client.Object{mut, val} {
			if err := d.cp.Client.Delete(dctx, o); err != nil && !apierrors.IsNotFound(err) {
				fmt.Fprintf(os.Stderr, "demo: removing webhook configuration: %v\n", err)
			}
		}
	}
	stop = func() {
		removeConfigs()
		cancelRun()
		<-done
	}
	url := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/readyz"
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("berth-controller ready: webhook https://127.0.0.1:%d, CA in secret %s/berth-webhook-tls, caBundle patched\n", ports[0], ns)
				return stop, nil
			}
		}
		select {
		case err := <-done:
			removeConfigs()
			cancelRun()
			return nil, fmt.Errorf("berth-controller stopped: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("berth-controller did not become ready in 2 minutes")
		}
	}
}
