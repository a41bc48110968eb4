package cniconf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCoordinatorResolveDefaults(t *testing.T) {
	c := &CoordinatorConfig{}
	r, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModeAuto || r.HostRuleTable != 500 || r.PodRPFilter != 0 || r.HostRPFilter != 0 ||
		r.DetectGateway || r.DetectIPConflict || r.DetectGatewayTimeout != 2*time.Second ||
		r.DetectIPConflictTimeout != 300*time.Millisecond || r.VethLinkAddress.String() != "169.254.200.1" ||
		r.APITimeout != 10*time.Second {
		t.Errorf("defaults: %+v", r)
	}
}

func TestCoordinatorResolve(t *testing.T) {
	for _, tc := range []struct {
		name, json, err string
		check           func(*Coordinator) bool
	}{
		{"full", `{"type":"berth-coordinator","mode":"underlay","podCIDRs":["10.244.0.1/16"],"serviceCIDRs":["fd00:96::/112"],
			"hijackCIDRs":["169.254.25.10/32"],"podDefaultRouteNIC":"net1","podMACPrefix":"0a:1b","hostRuleTable":600,
			"podRPFilter":-1,"hostRPFilter":2,"txQueueLen":1000,"detectGateway":true,"detectIPConflict":true,
			"detectGatewayTimeout":"500ms","detectIPConflictTimeout":"1s","vethLinkAddress":"169.254.1.1","apiTimeout":"3s"}`, "",
			func(r *Coordinator) bool {
				return r.Mode == ModeUnderlay && r.PodCIDRs[0].String() == "10.244.0.0/16" && r.HostRuleTable == 600 &&
					r.PodRPFilter == -1 && r.HostRPFilter == 2 && r.TxQueueLen == 1000 && r.DetectGateway && r.DetectIPConflict &&
					r.DetectGatewayTimeout == 500*time.Millisecond && r.PodMACPrefix[1] == 0x1b && r.VethLinkAddress.String() == "169.254.1.1"
			}},
		{"one-byte MAC prefix", `{"podMACPrefix":"0a"}`, "", func(r *Coordinator) bool { return len(r.PodMACPrefix) == 1 }},
		{"mode", `{"mode":"bridge"}`, `mode: "bridge" is not one of`, nil},
		{"pod CIDR", `{"podCIDRs":["10.244.0.0/16","x"]}`, `podCIDRs[1]: "x" is not a CIDR`, nil},
		{"service CIDR", `{"serviceCIDRs":["10.96.0.0"]}`, `serviceCIDRs[0]: "10.96.0.0" is not a CIDR`, nil},
		{"hijack CIDR", `{"hijackCIDRs":["::/129"]}`, `hijackCIDRs[0]`, nil},
		{"default NIC", `{"podDefaultRouteNIC":"a/b"}`, `podDefaultRouteNIC: "a/b" contains '/'`, nil},
		{"MAC prefix three bytes", `{"podMACPrefix":"0a:1b:2c"}`, `podMACPrefix: "0a:1b:2c" is not one or two hex bytes`, nil},
		{"MAC prefix multicast", `{"podMACPrefix":"01"}`, `podMACPrefix: "01" has the multicast bit`, nil},
		{"MAC prefix not hex", `{"podMACPrefix":"zz:00"}`, `podMACPrefix: "zz:00" is not one or two hex bytes`, nil},
		{"host table zero", `{"hostRuleTable":0}`, "hostRuleTable: 0 must be", nil},
		{"host table local", `{"hostRuleTable":255}`, "hostRuleTable: 255 must be", nil},
		{"host table main", `{"hostRuleTable":254}`, "hostRuleTable: 254 must be", nil},
		{"host table 256", `{"hostRuleTable":256}`, "", func(r *Coordinator) bool { return r.HostRuleTable == 256 }},
		{"host table too big", `{"hostRuleTable":4294967296}`, "hostRuleTable: 4294967296 must be", nil},
		{"pod rp_filter", `{"podRPFilter":-2}`, "podRPFilter: -2 must be", nil},
		{"host rp_filter", `{"hostRPFilter":3}`, "hostRPFilter: 3 must be", nil},
		{"txqueuelen", `{"txQueueLen":-1}`, "txQueueLen: -1 must not be negative", nil},
		{"gateway timeout", `{"detectGatewayTimeout":"2"}`, `detectGatewayTimeout: "2" is not a duration`, nil},
		{"conflict timeout", `{"detectIPConflictTimeout":"0s"}`, `detectIPConflictTimeout: "0s" must be positive`, nil},
		{"api timeout", `{"apiTimeout":"x"}`, `apiTimeout: "x" is not a duration`, nil},
		{"veth IPv6", `{"vethLinkAddress":"fe80::1"}`, `vethLinkAddress: "fe80::1" is not an IPv4 address`, nil},
		{"veth mapped IPv4", `{"vethLinkAddress":"::ffff:169.254.1.1"}`, `vethLinkAddress: "::ffff:169.254.1.1" is not an IPv4 address`, nil},
		{"veth before multicast", `{"vethLinkAddress":"223.255.255.255"}`, `vethLinkAddress: "223.255.255.255" leaves no unicast address`, nil},
		{"veth last multicast", `{"vethLinkAddress":"239.255.255.255"}`, "", func(r *Coordinator) bool { return r.VethLinkAddress.String() == "239.255.255.255" }},
		{"locally administered MAC prefix", `{"podMACPrefix":"02"}`, "", func(r *Coordinator) bool { return r.PodMACPrefix[0] == 2 }},
		{"veth last address", `{"vethLinkAddress":"255.255.255.254"}`, `vethLinkAddress: "255.255.255.254" leaves no unicast address`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &CoordinatorConfig{}
			if err := json.Unmarshal([]byte(tc.json), c); err != nil {
				t.Fatal(err)
			}
			r, err := c.Resolve()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(r) {
				t.Errorf("resolved to %+v", r)
			}
		})
	}
}

func TestIPAMValidate(t *testing.T) {
	for _, tc := range []struct{ name, json, err string }{
		{"minimal", `{"type":"berth-ipam"}`, ""},
		{"pools", `{"type":"berth-ipam","kubeconfig":"/etc/cni/net.d/berth.kubeconfig","apiTimeout":"5s","pools":[
			{"name":"v4","subnet":"10.6.0.0/16","gateway":"10.6.0.1","routes":[{"dst":"10.7.0.0/16","gw":"10.6.0.1"}],"dns":{"nameservers":["10.6.0.53"]}},
			{"name":"v6","subnet":"fd00:6::/64"}]}`, ""},
		{"type", `{"type":"host-local"}`, `ipam.type: "host-local", expected "berth-ipam"`},
		{"pool name", `{"type":"berth-ipam","pools":[{"subnet":"10.6.0.0/16"}]}`, "ipam.pools[0].name: must not be empty"},
		{"pool twice", `{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.6.0.0/16"},{"name":"a","subnet":"10.7.0.0/16"}]}`, `ipam.pools[1].name: "a" appears twice`},
		{"subnet", `{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.6.0.0"}]}`, `ipam.pools[0].subnet: "10.6.0.0" is not a CIDR`},
		{"gateway outside", `{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.6.0.0/16","gateway":"10.7.0.1"}]}`, "ipam.pools[0].gateway: 10.7.0.1 is outside subnet 10.6.0.0/16"},
		{"gateway garbage", `{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.6.0.0/16","gateway":"gw"}]}`, `ipam.pools[0].gateway: "gw" is not an IP address`},
		{"route family", `{"type":"berth-ipam","pools":[{"name":"a","subnet":"10.6.0.0/16","routes":[{"dst":"10.7.0.0/16","gw":"fd00::1"}]}]}`, "ipam.pools[0].routes[0].gw: fd00::1 is not of the family"},
		{"timeout", `{"type":"berth-ipam","apiTimeout":"-5s"}`, `ipam.apiTimeout: "-5s" must be positive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &IPAMConfig{}
			if err := json.Unmarshal([]byte(tc.json), c); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func FuzzCoordinatorResolve(f *testing.F) {
	f.Add(`{"mode":"overlay","podCIDRs":["10.244.0.0/16"],"podMACPrefix":"0a:1b","hostRuleTable":500}`)
	f.Add(`{"podMACPrefix":"0a","detectGatewayTimeout":"1s","vethLinkAddress":"169.254.0.1"}`)
	f.Add(`{"podMACPrefix":":","hostRuleTable":-1}`)
	f.Fuzz(func(t *testing.T, s string) {
		c := &CoordinatorConfig{}
		if json.Unmarshal([]byte(s), c) != nil {
			return
		}
		r, err := c.Resolve()
		if err == nil && (r.Mode == "" || !r.VethLinkAddress.Is4() || r.HostRuleTable == 254 || (len(r.PodMACPrefix) > 0 && r.PodMACPrefix[0]&1 != 0)) {
			t.Fatalf("accepted %s as %+v", s, r)
		}
	})
}

func FuzzIPAMValidate(f *testing.F) {
	f.Add(`{"type":"berth-ipam","pools":[{"name":"v4","subnet":"10.6.0.0/16","gateway":"10.6.0.1"}]}`)
	f.Add(`{"type":"berth-ipam","apiTimeout":"1m","pools":[{"name":"a","subnet":"fd00::/64","routes":[{"dst":"::/0"}]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		c := &IPAMConfig{}
		if json.Unmarshal([]byte(s), c) != nil {
			return
		}
		if c.Validate() == nil && c.Timeout() <= 0 {
			t.Fatalf("accepted %s with timeout %s", s, c.Timeout())
		}
	})
}
