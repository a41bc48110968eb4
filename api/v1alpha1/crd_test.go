package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1 "github.com/berth-io/berth/api/v1alpha1"
	"github.com/berth-io/berth/network/render"
	"github.com/berth-io/berth/tests/controlplane"
)

// One control plane for the package: these tests only need the API server.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.Main(m, controlplane.Options{}, &cp))
}

func ctx(t *testing.T) context.Context { return controlplane.Context(t, 30*time.Second) }

func pool(name string, spec berthv1.IPPoolSpec) *berthv1.IPPool {
	return &berthv1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

// table reads a resource list in the server-side Table form kubectl prints,
// and returns the column names and the cells of the row named name.
func table(t *testing.T, resource, name string) ([]string, map[string]any) {
	t.Helper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.GroupVersion = &berthv1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(cp.Scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().Resource(resource).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx(t))
	if err != nil {
		t.Fatalf("listing %s as a table: %v", resource, err)
	}
	var tab metav1.Table
	if err := json.Unmarshal(raw, &tab); err != nil {
		t.Fatalf("decoding table of %s: %v", resource, err)
	}
	var cols []string
	for _, c := range tab.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	for _, r := range tab.Rows {
		if r.Cells[0] == name {
			row := map[string]any{}
			for i, c := range cols {
				row[c] = r.Cells[i]
			}
			return cols, row
		}
	}
	t.Fatalf("no row %q in table of %s", name, resource)
	return nil, nil
}

func TestIPPoolAcceptedAndPrinted(t *testing.T) {
	p := pool("api-valid-v4", berthv1.IPPoolSpec{
		Subnet:     "10.6.0.0/16",
		IPs:        []string{"10.6.212.100-10.6.212.200", "10.6.213.1"},
		ExcludeIPs: []string{"10.6.212.150"},
		Gateway:    ptr.To("10.6.0.1"),
		Routes:     []berthv1.Route{{Dst: "10.7.0.0/16", GW: ptr.To("10.6.0.254")}},
		DNS:        &berthv1.DNS{Nameservers: []string{"10.6.0.53"}},
		VLAN:       ptr.To[int32](100),
		Default:    true,
		Networks:   []string{"default/storage", "storage"},
	})
	if err := cp.Client.Create(ctx(t), p); err != nil {
		t.Fatalf("creating a valid IPv4 pool: %v", err)
	}
	v6 := pool("api-valid-v6", berthv1.IPPoolSpec{Subnet: "fd00:6::/64", IPs: []string{"fd00:6::100-fd00:6::1ff"}, Gateway: ptr.To("fd00:6::1"), Disable: true})
	if err := cp.Client.Create(ctx(t), v6); err != nil {
		t.Fatalf("creating a valid IPv6 pool: %v", err)
	}

	got := &berthv1.IPPool{}
	if err := cp.Client.Get(ctx(t), client.ObjectKey{Name: p.Name}, got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Subnet != "10.6.0.0/16" || len(got.Spec.IPs) != 2 || *got.Spec.Gateway != "10.6.0.1" || !got.Spec.Default {
		t.Errorf("pool read back differs: %+v", got.Spec)
	}

	// Status is a subresource: the controller's write lands, a spec write
	// carrying status does not.
	got.Status = berthv1.IPPoolStatus{TotalIPCount: 102, AllocatedIPCount: 3, Phase: berthv1.IPPoolReady}
	if err := cp.Client.Status().Update(ctx(t), got); err != nil {
		t.Fatalf("updating status: %v", err)
	}
	got.Status.AllocatedIPCount = 99
	if err := cp.Client.Update(ctx(t), got); err != nil {
		t.Fatal(err)
	}

	cols, row := table(t, "ippools", p.Name)
	want := []string{"Name", "SUBNET", "ALLOCATED", "TOTAL", "DEFAULT", "DISABLED", "AGE"}
	if strings.Join(cols, ",") != strings.Join(want, ",") {
		t.Errorf("IPPool columns = %v, want %v", cols, want)
	}
	if row["SUBNET"] != "10.6.0.0/16" || row["ALLOCATED"] != float64(3) || row["TOTAL"] != float64(102) || row["DEFAULT"] != true || row["DISABLED"] != false {
		t.Errorf("IPPool row = %v", row)
	}
	_, row6 := table(t, "ippools", v6.Name)
	if row6["SUBNET"] != "fd00:6::/64" || row6["DISABLED"] != true {
		t.Errorf("IPv6 IPPool row = %v", row6)
	}
}

func TestIPPoolRejected(t *testing.T) {
	v4 := func(mod func(*berthv1.IPPoolSpec)) berthv1.IPPoolSpec {
		s := berthv1.IPPoolSpec{Subnet: "10.9.0.0/24", IPs: []string{"10.9.0.10-10.9.0.20"}, Gateway: ptr.To("10.9.0.1")}
		mod(&s)
		return s
	}
	tests := []struct {
		name string
		spec berthv1.IPPoolSpec
		want []string // substrings of the API server's message
	}{
		{"subnet not a CIDR", v4(func(s *berthv1.IPPoolSpec) { s.Subnet = "10.9.0.0"; s.IPs = nil; s.Gateway = nil }),
			[]string{"spec.subnet", "must be a CIDR"}},
		{"subnet with host bits", v4(func(s *berthv1.IPPoolSpec) { s.Subnet = "10.9.0.5/24" }),
			[]string{"spec.subnet", "network address"}},
		{"range outside the subnet", v4(func(s *berthv1.IPPoolSpec) { s.IPs = []string{"10.9.0.10-10.9.1.20"} }),
			[]string{"spec.ips", "inside spec.subnet"}},
		{"single address outside the subnet", v4(func(s *berthv1.IPPoolSpec) { s.IPs = []string{"10.8.0.1"} }),
			[]string{"spec.ips", "inside spec.subnet"}},
		{"malformed range", v4(func(s *berthv1.IPPoolSpec) { s.IPs = []string{"10.9.0.10-"} }),
			[]string{"spec.ips[0]", "range"}},
		{"gateway outside the subnet", v4(func(s *berthv1.IPPoolSpec) { s.Gateway = ptr.To("10.9.1.1") }),
			[]string{"spec.gateway", "inside spec.subnet"}},
		{"gateway not an IP", v4(func(s *berthv1.IPPoolSpec) { s.Gateway = ptr.To("gw") }),
			[]string{"spec.gateway", "must be an IP address"}},
		{"IPv6 range in an IPv4 pool", v4(func(s *berthv1.IPPoolSpec) { s.IPs = []string{"fd00::10-fd00::20"} }),
			[]string{"spec.ips", "IP family of spec.subnet"}},
		{"IPv6 gateway in an IPv4 pool", v4(func(s *berthv1.IPPoolSpec) { s.Gateway = ptr.To("fd00::1") }),
			[]string{"spec.gateway", "IP family"}},
		{"IPv4 exclusion in an IPv6 pool", berthv1.IPPoolSpec{Subnet: "fd00:9::/64", ExcludeIPs: []string{"10.0.0.1"}},
			[]string{"spec.excludeIPs", "IP family"}},
		{"route of the other family", v4(func(s *berthv1.IPPoolSpec) { s.Routes = []berthv1.Route{{Dst: "fd00::/64"}} }),
			[]string{"spec.routes", "IP family"}},
		{"route destination not a CIDR", v4(func(s *berthv1.IPPoolSpec) { s.Routes = []berthv1.Route{{Dst: "10.0.0.1"}} }),
			[]string{"spec.routes[0].dst", "must be a CIDR"}},
		{"vlan out of range", v4(func(s *berthv1.IPPoolSpec) { s.VLAN = ptr.To[int32](4095) }),
			[]string{"spec.vlan", "4094"}},
		{"network reference malformed", v4(func(s *berthv1.IPPoolSpec) { s.Networks = []string{"a/b/c"} }),
			[]string{"spec.networks[0]"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cp.Client.Create(ctx(t), pool("api-bad-"+strings.ToLower(strings.ReplaceAll(tt.name, " ", "-"))+"-"+string(rune('a'+i)), tt.spec))
			assertRejected(t, err, tt.want...)
		})
	}
}

func TestIPPoolSubnetImmutable(t *testing.T) {
	p := pool("api-immutable", berthv1.IPPoolSpec{Subnet: "10.10.0.0/24"})
	if err := cp.Client.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Subnet = "10.11.0.0/24"
	assertRejected(t, cp.Client.Update(ctx(t), p), "spec.subnet", "immutable")
}

func TestIPAllocationNameIsTheLock(t *testing.T) {
	for _, ip := range []string{"10.6.212.101", "fd00:6::101", "::1", "fd00:6:0:0:1::"} {
		addr := netip.MustParseAddr(ip)
		a := &berthv1.IPAllocation{
			ObjectMeta: metav1.ObjectMeta{Name: berthv1.AllocationName("p1", addr)},
			Spec: berthv1.IPAllocationSpec{Pool: "p1", IP: ip, Phase: berthv1.AllocationReserved,
				PodRef: &berthv1.PodReference{Namespace: "default", GenerateName: "web-"}, Interface: "net1"},
		}
		if err := cp.Client.Create(ctx(t), a); err != nil {
			t.Fatalf("creating allocation %s: %v", a.Name, err)
		}
		dup := a.DeepCopy()
		dup.ResourceVersion = ""
		if err := cp.Client.Create(ctx(t), dup); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second allocation of %s: got %v, want AlreadyExists", ip, err)
		}
	}
	_, row := table(t, "ipallocations", "p1.fd00-6--101")
	if row["POOL"] != "p1" || row["IP"] != "fd00:6::101" || row["INTERFACE"] != "net1" || row["PHASE"] != "Reserved" {
		t.Errorf("IPAllocation row = %v", row)
	}

	bad := []struct {
		name, pool, ip string
		want           []string
	}{
		{"p1.10.6.212.102", "p1", "10.6.212.103", []string{"metadata.name must be spec.pool"}},
		{"p2.10.6.212.102", "p1", "10.6.212.102", []string{"metadata.name must be spec.pool"}},
		{"p1.fd00-0-0-0-0-0-0-1", "p1", "fd00:0:0:0:0:0:0:1", []string{"spec.ip", "canonical"}},
		{"p1.--2", "p1", "::2", []string{"metadata.name must be spec.pool"}},
		{"p1.0--3", "p1", "::2", []string{"metadata.name must be spec.pool"}},
		{"p1.x", "p1", "x", []string{"spec.ip", "must be an IP address"}},
	}
	for _, b := range bad {
		a := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: b.name}, Spec: berthv1.IPAllocationSpec{Pool: b.pool, IP: b.ip, Phase: berthv1.AllocationReserved}}
		assertRejected(t, cp.Client.Create(ctx(t), a), b.want...)
	}
	a := &berthv1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: "p1.10.6.212.109"}, Spec: berthv1.IPAllocationSpec{Pool: "p1", IP: "10.6.212.109", Phase: "Leased"}}
	assertRejected(t, cp.Client.Create(ctx(t), a), "spec.phase", "Reserved", "Bound")
}

func TestNetworkAcceptedAndRejected(t *testing.T) {
	ns := "default"
	good := []*berthv1.Network{
		{ObjectMeta: metav1.ObjectMeta{Name: "api-macvlan", Namespace: ns}, Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan,
			Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 100}},
			IPPools: &berthv1.PoolSelection{IPv4: []string{"storage-v4"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "api-sriov", Namespace: ns}, Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV,
			SRIOV: &berthv1.SRIOVConfig{ResourceName: "berth.io/sriov_netdevice", VLANID: 200}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "api-hostdev", Namespace: ns}, Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice,
			HostDevice: &berthv1.HostDeviceConfig{PCIAddress: "0000:3b:00.1"}}},
	}
	for _, n := range good {
		if err := cp.Client.Create(ctx(t), n); err != nil {
			t.Fatalf("creating network %s: %v", n.Name, err)
		}
	}
	got := &berthv1.Network{}
	if err := cp.Client.Get(ctx(t), client.ObjectKeyFromObject(good[0]), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Macvlan.Mode != "bridge" {
		t.Errorf("macvlan mode defaulted to %q, want bridge", got.Spec.Macvlan.Mode)
	}
	cols, _ := table(t, "networks", "api-macvlan")
	if strings.Join(cols, ",") != "Name,TYPE,NAD,PHASE,AGE" {
		t.Errorf("Network columns = %v", cols)
	}

	tests := []struct {
		name string
		spec berthv1.NetworkSpec
		want []string
	}{
		{"unknown cniType", berthv1.NetworkSpec{CNIType: "flannel"}, []string{"spec.cniType", "Unsupported value", "macvlan"}},
		{"macvlan block missing", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan}, []string{"spec.macvlan", "required when spec.cniType is macvlan"}},
		{"block of another type", berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{ResourceName: "x/y"},
			Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}}}, []string{"only the block named by spec.cniType"}},
		{"macvlan without master", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{}}, []string{"spec.macvlan.master"}},
		{"unknown macvlan mode", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}}, Mode: "l2"}},
			[]string{"spec.macvlan.mode", "Unsupported value"}},
		{"vlanID out of range", berthv1.NetworkSpec{CNIType: berthv1.CNITypeMacvlan, Macvlan: &berthv1.MacvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1"}, VLANID: 5000}}},
			[]string{"spec.macvlan.vlanID", "4094"}},
		{"two masters without bond", berthv1.NetworkSpec{CNIType: berthv1.CNITypeIPvlan, IPvlan: &berthv1.IPvlanConfig{MasterConfig: berthv1.MasterConfig{Master: []string{"eth1", "eth2"}}}},
			[]string{"spec.ipvlan.bond", "bond is required"}},
		{"sriov without resourceName", berthv1.NetworkSpec{CNIType: berthv1.CNITypeSRIOV, SRIOV: &berthv1.SRIOVConfig{}}, []string{"spec.sriov.resourceName"}},
		{"host-device with both device and PCI", berthv1.NetworkSpec{CNIType: berthv1.CNITypeHostDevice, HostDevice: &berthv1.HostDeviceConfig{Device: "eth3", PCIAddress: "0000:3b:00.1"}},
			[]string{"spec.hostDevice", "exactly one"}},
		{"hijack CIDR malformed", berthv1.NetworkSpec{CNIType: berthv1.CNITypeBridge, Bridge: &berthv1.BridgeConfig{Bridge: "br0"},
			Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.1"}}}}, []string{"spec.coordinator.hijackCIDR[0]", "must be CIDRs"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &berthv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "api-bad-" + string(rune('a'+i)), Namespace: ns}, Spec: tt.spec}
			assertRejected(t, cp.Client.Create(ctx(t), n), tt.want...)
		})
	}
}

func TestAttachmentPolicyAndCoordinator(t *testing.T) {
	p := &berthv1.AttachmentPolicy{ObjectMeta: metav1.ObjectMeta{Name: "api-policy"}, Spec: berthv1.AttachmentPolicySpec{Rego: "package berth.attachments\n"}}
	if err := cp.Client.Create(ctx(t), p); err != nil {
		t.Fatalf("creating policy: %v", err)
	}
	if p.Spec.Priority != 100 || p.Spec.Enabled == nil || !*p.Spec.Enabled {
		t.Errorf("policy defaults: priority %d enabled %v, want 100 and true", p.Spec.Priority, p.Spec.Enabled)
	}
	cols, _ := table(t, "attachmentpolicies", "api-policy")
	if strings.Join(cols, ",") != "Name,PRIORITY,ENABLED,PHASE,AGE" {
		t.Errorf("AttachmentPolicy columns = %v", cols)
	}
	for _, rego := range []string{"", "  \n\t"} {
		bad := &berthv1.AttachmentPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-empty-"}, Spec: berthv1.AttachmentPolicySpec{Rego: rego}}
		assertRejected(t, cp.Client.Create(ctx(t), bad), "spec.rego")
	}

	c := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: berthv1.CoordinatorSpec{
		CoordinatorSettings: berthv1.CoordinatorSettings{Mode: ptr.To(berthv1.CoordinatorAuto), PodMACPrefix: ptr.To("0a:1b")}}}
	if err := cp.Client.Create(ctx(t), c); err != nil {
		t.Fatalf("creating coordinator: %v", err)
	}
	if c.Spec.PodCIDRType != berthv1.PodCIDRAuto {
		t.Errorf("podCIDRType defaulted to %q, want auto", c.Spec.PodCIDRType)
	}
	other := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "second"}}
	assertRejected(t, cp.Client.Create(ctx(t), other), "metadata.name", "\"default\"")
	badMode := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: berthv1.CoordinatorSpec{PodCIDRType: "weave"}}
	badMode.Name = "default"
	if err := cp.Client.Get(ctx(t), client.ObjectKeyFromObject(c), badMode); err != nil {
		t.Fatal(err)
	}
	badMode.Spec.PodCIDRType = "weave"
	badMode.Spec.PodMACPrefix = ptr.To("zz")
	assertRejected(t, cp.Client.Update(ctx(t), badMode), "spec.podCIDRType", "spec.podMACPrefix")
}

func assertRejected(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want rejection mentioning %q", want)
	}
	if !strings.Contains(err.Error(), "is invalid") {
		t.Errorf("error is not a validation error: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// TestCoordinatorSettingsMatchThePlugin: the API server refuses, with the
// field's path, every coordinator setting berth-coordinator would refuse at
// each pod's ADD, and accepts the rest; in a Network's spec.coordinator and
// in the Coordinator's spec, which share the schema. The plugin's verdict
// is cniconf's Resolve on what the NAD renderer makes of the settings.
func TestCoordinatorSettingsMatchThePlugin(t *testing.T) {
	tests := []struct {
		name  string
		s     berthv1.CoordinatorSettings
		field string // "" when valid
		msg   string
	}{
		{"host table 252", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](252)}, "", ""},
		{"host table default", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](253)}, "hostRuleTable", "not 253, 254 or 255"},
		{"host table main", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](254)}, "hostRuleTable", "not 253, 254 or 255"},
		{"host table local", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](255)}, "hostRuleTable", "not 253, 254 or 255"},
		{"host table 256", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](256)}, "", ""},
		{"host table 0", berthv1.CoordinatorSettings{HostRuleTable: ptr.To[int64](0)}, "hostRuleTable", "greater than or equal to 1"},
		{"MAC prefix", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("0a:1b")}, "", ""},
		{"MAC prefix locally administered", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("FE")}, "", ""},
		{"MAC prefix multicast", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("01:00")}, "podMACPrefix", "multicast bit"},
		{"MAC prefix multicast upper", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("0B")}, "podMACPrefix", "multicast bit"},
		{"MAC prefix not hex", berthv1.CoordinatorSettings{PodMACPrefix: ptr.To("zz")}, "podMACPrefix", "should match"},
		{"veth", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("169.254.1.1")}, "", ""},
		{"veth zero", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("0.0.0.0")}, "", ""},
		{"veth last multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("239.255.255.255")}, "", ""},
		{"veth IPv6", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("fe80::1")}, "vethLinkAddress", "must be an IPv4 address"},
		{"veth mapped IPv4", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("::ffff:169.254.1.1")}, "vethLinkAddress", "must be an IPv4 address"},
		{"veth not an address", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("veth")}, "vethLinkAddress", "must be an IPv4 address"},
		{"veth before multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("223.255.255.255")}, "vethLinkAddress", "unicast address after it"},
		{"veth multicast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("239.0.0.1")}, "vethLinkAddress", "unicast address after it"},
		{"veth before broadcast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("255.255.255.254")}, "vethLinkAddress", "unicast address after it"},
		{"veth broadcast", berthv1.CoordinatorSettings{VethLinkAddress: ptr.To("255.255.255.255")}, "vethLinkAddress", "unicast address after it"},
		{"nic", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net1")}, "", ""},
		{"nic empty", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("")}, "", ""},
		{"nic with percent", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net%d")}, "", ""},
		{"nic with space", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net 1")}, "podDefaultRouteNIC", "interface name"},
		{"nic with slash", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("a/b")}, "podDefaultRouteNIC", "interface name"},
		{"nic with colon", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net:1")}, "podDefaultRouteNIC", "interface name"},
		{"nic dot", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To(".")}, "podDefaultRouteNIC", "interface name"},
		{"nic dot dot", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("..")}, "podDefaultRouteNIC", "interface name"},
		{"nic not ASCII", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("nét1")}, "podDefaultRouteNIC", "interface name"},
		{"nic control character", berthv1.CoordinatorSettings{PodDefaultRouteNIC: ptr.To("net\x7f")}, "podDefaultRouteNIC", "interface name"},
		{"rp_filter", berthv1.CoordinatorSettings{PodRPFilter: ptr.To[int32](-1), HostRPFilter: ptr.To[int32](2)}, "", ""},
		{"pod rp_filter", berthv1.CoordinatorSettings{PodRPFilter: ptr.To[int32](-2)}, "podRPFilter", "greater than or equal to -1"},
		{"host rp_filter", berthv1.CoordinatorSettings{HostRPFilter: ptr.To[int32](3)}, "hostRPFilter", "less than or equal to 2"},
		{"txqueuelen", berthv1.CoordinatorSettings{TxQueueLen: ptr.To[int32](-1)}, "txQueueLen", "greater than or equal to 0"},
		{"hijack", berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.1/8", "fd00::/8"}}, "", ""},
		{"hijack address", berthv1.CoordinatorSettings{HijackCIDRs: []string{"10.0.0.1"}}, "hijackCIDR[0]", "must be CIDRs"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := &berthv1.Network{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-coord-%d", i), Namespace: "default"},
				Spec: berthv1.NetworkSpec{CNIType: berthv1.CNITypeBridge, Bridge: &berthv1.BridgeConfig{Bridge: "br0"},
					Coordinator: &berthv1.NetworkCoordinator{CoordinatorSettings: tt.s}},
			}
			cfg := render.Coordinator(nw, nil, "")
			if _, err := cfg.Resolve(); (err == nil) != (tt.field == "") {
				t.Fatalf("the case is wrong: berth-coordinator says %v", err)
			}
			// Dry runs: nothing is stored, so the one Coordinator is free
			// for the other tests.
			errNet := cp.Client.Create(ctx(t), nw, client.DryRunAll)
			coord := &berthv1.Coordinator{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: berthv1.CoordinatorSpec{CoordinatorSettings: tt.s}}
			errCoord := cp.Client.Create(ctx(t), coord, client.DryRunAll)
			if tt.field == "" {
				if errNet != nil {
					t.Errorf("Network refused: %v", errNet)
				}
				if errCoord != nil && !apierrors.IsAlreadyExists(errCoord) {
					t.Errorf("Coordinator refused: %v", errCoord)
				}
				return
			}
			assertRejected(t, errNet, "spec.coordinator."+tt.field, tt.msg)
			assertRejected(t, errCoord, "spec."+tt.field, tt.msg)
		})
	}
}
