package cniconf

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// What berth-ifacer accepts and what it refuses, with the field each
// refusal names.
func TestParseIfacerConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		master     string // when valid
		err        string // when not
	}{
		{"VLAN on one interface", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":100}`, "eth1.100", ""},
		{"one interface, nothing to make", `{"type":"berth-ifacer","interfaces":["eth1"]}`, "eth1", ""},
		{"bond", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":"primary=eth1;miimon=100"}}`, "bond0", ""},
		{"bond with VLAN 0 still bonds", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":0,"bond":{"name":"bond0","mode":4}}`, "bond0", ""},
		{"bond and VLAN", `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":200,"bond":{"name":"bond0","mode":1}}`, "bond0.200", ""},
		{"bond of one interface", `{"type":"berth-ifacer","interfaces":["eth1"],"bond":{"name":"bond0","mode":1}}`, "bond0", ""},
		{"highest VLAN", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":4094}`, "eth1.4094", ""},
		{"fields of the runtime are ignored", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":7,"prevResult":{"cniVersion":"1.0.0"},"args":{"cni":{}},"runtimeConfig":{"ips":["10.0.0.1/24"]}}`, "eth1.7", ""},
		{"options padded as Spiderpool's docs write them", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":" primary=eth1; arp_interval=1 ;"}}`, "bond0", ""},

		{"not JSON", `{"type":`, "", "decoding the berth-ifacer configuration"},
		{"vlanID as a string", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":"100"}`, "", "decoding the berth-ifacer configuration"},
		{"another type", `{"type":"ifacer","interfaces":["eth1"],"vlanID":100}`, "", `type: "ifacer", expected "berth-ifacer"`},
		{"no interfaces", `{"type":"berth-ifacer","vlanID":100}`, "", "interfaces: must name at least one interface"},
		{"empty interfaces", `{"type":"berth-ifacer","interfaces":[],"vlanID":100}`, "", "interfaces: must name at least one interface"},
		{"empty name", `{"type":"berth-ifacer","interfaces":["eth1",""],"bond":{"name":"bond0","mode":1}}`, "", "interfaces[1]: an interface name must not be empty"},
		{"name too long", `{"type":"berth-ifacer","interfaces":["a-very-long-name0"]}`, "", `interfaces[0]: interface name "a-very-long-name0" is longer than 15 bytes`},
		{"name with a slash", `{"type":"berth-ifacer","interfaces":["eth/1"]}`, "", `interfaces[0]: interface name "eth/1": '/' is not allowed`},
		{"name with a space", `{"type":"berth-ifacer","interfaces":["eth 1"]}`, "", `interfaces[0]: interface name "eth 1": ' ' is not allowed`},
		{"name with a colon", `{"type":"berth-ifacer","interfaces":["eth1:0"]}`, "", `interfaces[0]: interface name "eth1:0": ':' is not allowed`},
		{"name template", `{"type":"berth-ifacer","interfaces":["eth%d"]}`, "", `interfaces[0]: interface name "eth%d": '%' is not allowed`},
		{"dot", `{"type":"berth-ifacer","interfaces":[".."]}`, "", `interfaces[0]: ".." is not a valid interface name`},
		{"twice", `{"type":"berth-ifacer","interfaces":["eth1","eth2","eth1"],"bond":{"name":"bond0"}}`, "", `interfaces[2]: "eth1" is interfaces[0] again`},
		{"negative VLAN", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":-1}`, "", "vlanID: -1 is outside 0-4094"},
		{"VLAN 4095", `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":4095}`, "", "vlanID: 4095 is outside 0-4094"},
		{"sub-interface name too long", `{"type":"berth-ifacer","interfaces":["enp175s0f1np1"],"vlanID":100}`, "", `vlanID: the sub-interface name "enp175s0f1np1.100" is longer than 15 bytes`},
		{"several interfaces, no bond", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":100}`, "", "bond: required with more than one interface (2 given)"},
		{"bond without name", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"mode":1}}`, "", "bond.name: an interface name must not be empty"},
		{"bond named as a member", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"eth2"}}`, "", `bond.name: "eth2" is also one of the interfaces it bonds`},
		{"bond mode 7", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":7}}`, "", "bond.mode: 7 is outside 0 (balance-rr) to 6 (balance-alb)"},
		{"bond mode -1", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":-1}}`, "", "bond.mode: -1 is outside"},
		{"options not key=value", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":"miimon"}}`, "", `bond.options: "miimon" is not key=value`},
		{"option unknown", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":1,"options":"miimon=100;speed=10"}}`, "", `bond.options: unknown bonding option "speed"`},
		{"bond VLAN name too long", `{"type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":1000,"bond":{"name":"storage-bond0","mode":1}}`, "", `vlanID: the sub-interface name "storage-bond0.1000" is longer than 15 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseIfacerConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Master(); got != tc.master {
				t.Errorf("Master() = %q, want %q", got, tc.master)
			}
		})
	}
}

// Each option the kernel takes, resolved to the number netlink carries;
// and each refusal, naming the option.
func TestBondOptions(t *testing.T) {
	members := []string{"eth1", "eth2"}
	for _, tc := range []struct {
		mode    int32
		options string
		want    string // fmt of the parsed options, when valid
		err     string
	}{
		{1, "miimon=100;updelay=200;downdelay=200", "miimon=100 updelay=200 downdelay=200", ""},
		{1, "primary=eth2;primary_reselect=better;fail_over_mac=active", "primary=eth2 primary_reselect=1 fail_over_mac=1", ""},
		{1, "primary_reselect=2;fail_over_mac=follow", "primary_reselect=2 fail_over_mac=2", ""},
		{2, "xmit_hash_policy=layer3+4", "xmit_hash_policy=1", ""},
		{4, "xmit_hash_policy=vlan+srcmac;lacp_rate=fast;ad_select=bandwidth", "xmit_hash_policy=5 lacp_rate=1 ad_select=1", ""},
		{4, "ad_actor_sys_prio=100;ad_user_port_key=1023;ad_actor_system=02:00:00:00:00:01", "ad_actor_sys_prio=100 ad_user_port_key=1023 ad_actor_system=02:00:00:00:00:01", ""},
		{4, "updelay=200", "updelay=200", ""}, // 802.3ad turns MII monitoring on by itself
		{1, "arp_interval=1000;arp_ip_target=10.6.0.1, 10.6.0.2;arp_validate=all;arp_all_targets=all", "arp_interval=1000 arp_ip_target=[10.6.0.1 10.6.0.2] arp_validate=3 arp_all_targets=1", ""},
		{0, "packets_per_slave=0;resend_igmp=255;num_grat_arp=3;all_slaves_active=on;min_links=1;lp_interval=1;use_carrier=1", "packets_per_slave=0 resend_igmp=255 num_unsol_na=3 all_slaves_active=1 min_links=1 lp_interval=1 use_carrier=1", ""},
		{5, "tlb_dynamic_lb=off", "tlb_dynamic_lb=0", ""},
		{6, "tlb_dynamic_lb=1", "tlb_dynamic_lb=1", ""},
		{1, "", "", ""},
		{1, ";;", "", ""},

		{1, "miimon=-1", "", `options: miimon: "-1" is not a number from 0 to 2147483647`},
		{1, "miimon=fast", "", `options: miimon: "fast" is not a number`},
		{0, "resend_igmp=256", "", `options: resend_igmp: "256" is not a number from 0 to 255`},
		{4, "ad_actor_sys_prio=0", "", `options: ad_actor_sys_prio: "0" is not a number from 1 to 65535`},
		{0, "lp_interval=0", "", `options: lp_interval: "0" is not a number from 1`},
		{2, "xmit_hash_policy=layer5", "", `options: xmit_hash_policy: "layer5" is none of layer2 (0), layer3+4 (1), layer2+3 (2), encap2+3 (3), encap3+4 (4), vlan+srcmac (5)`},
		{2, "xmit_hash_policy=6", "", `options: xmit_hash_policy: "6" is none of`},
		{0, "primary=eth1", "", "options: primary: the kernel refuses it in mode 0 (balance-rr); it applies to mode 1 (active-backup), 5 (balance-tlb), 6 (balance-alb)"},
		{1, "primary=eth3", "", `options: primary: "eth3" is not one of the bonded interfaces [eth1 eth2]`},
		{1, "lacp_rate=fast", "", "options: lacp_rate: the kernel refuses it in mode 1 (active-backup); it applies to mode 4 (802.3ad)"},
		{4, "arp_interval=100", "", "options: arp_interval: the kernel refuses it in mode 4 (802.3ad)"},
		{6, "arp_validate=all", "", "options: arp_validate: the kernel refuses it in mode 6 (balance-alb)"},
		{1, "packets_per_slave=2", "", "options: packets_per_slave: the kernel refuses it in mode 1"},
		{1, "tlb_dynamic_lb=0", "", "options: tlb_dynamic_lb: the kernel refuses it in mode 1"},
		{4, "ad_actor_system=01:00:5e:00:00:01", "", "options: ad_actor_system: 01:00:5e:00:00:01 is not a unicast address"},
		{4, "ad_actor_system=00:00:00:00:00:00", "", "is not a unicast address"},
		{4, "ad_actor_system=zz", "", `options: ad_actor_system: "zz" is not an Ethernet MAC address`},
		{1, "arp_ip_target=fd00::1", "", `options: arp_ip_target: "fd00::1" is not an IPv4 address`},
		{1, "arp_ip_target=224.0.0.1", "", "options: arp_ip_target: 224.0.0.1 cannot be an ARP target"},
		{1, "arp_ip_target=10.0.0.1,10.0.0.1", "", "options: arp_ip_target: 10.0.0.1 is listed twice"},
		{1, "arp_ip_target=" + targets(17), "", "options: arp_ip_target: 17 targets, the kernel takes at most 16"},
		{1, "miimon=100;miimon=200", "", "options: miimon is given twice"},
		{1, "num_unsol_na=1;num_grat_arp=1", "", "options: num_unsol_na is given twice (num_grat_arp is another name of num_unsol_na)"},
		{1, "updelay=200", "", "options: updelay needs miimon above 0"},
		{1, "miimon=0;downdelay=200", "", "options: downdelay needs miimon above 0"},
		{1, "miimon=100;arp_interval=100", "", "options: miimon and arp_interval exclude each other"},
		{1, "mode=1", "", "options: mode is bond.mode, not an option"},
		{1, "active_slave=eth1", "", "options: active_slave is chosen at run time"},
		{1, "peer_notif_delay=100", "", "options: peer_notif_delay is a bonding option berth-ifacer cannot set"},
		{1, "=100", "", `options: "=100" is not key=value`},
		{1, "miimon=", "", `options: "miimon=" is not key=value`},
	} {
		t.Run(fmt.Sprintf("mode %d %s", tc.mode, tc.options), func(t *testing.T) {
			b := &IfacerBond{Name: "bond0", Mode: tc.mode, Options: tc.options}
			opts, err := b.ParseOptions(members)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmtOptions(opts); got != tc.want {
				t.Errorf("parsed %q, want %q", got, tc.want)
			}
		})
	}
}

func targets(n int) string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, fmt.Sprintf("10.0.0.%d", i))
	}
	return strings.Join(s, ",")
}

func fmtOptions(opts []BondOption) string {
	var parts []string
	for _, o := range opts {
		v := fmt.Sprint(o.Int)
		switch {
		case o.Interface != "":
			v = o.Interface
		case o.IPs != nil:
			v = fmt.Sprint(o.IPs)
		case o.MAC != nil:
			v = o.MAC.String()
		}
		parts = append(parts, o.Name+"="+v)
	}
	return strings.Join(parts, " ")
}

// Every name BondOptionNames lists is accepted in some mode, so the list and
// the parser cannot drift apart.
func TestBondOptionNamesParse(t *testing.T) {
	value := map[string]string{
		BondOptPrimary: "eth1", BondOptARPIPTarget: "10.0.0.1", BondOptADActorSystem: "02:00:00:00:00:01",
		BondOptADActorSysPrio: "1", BondOptLPInterval: "1",
	}
	for _, name := range BondOptionNames() {
		v := value[name]
		if v == "" {
			v = "1"
		}
		ok := false
		for mode := int32(0); mode <= 6 && !ok; mode++ {
			options := name + "=" + v
			if name == BondOptUpDelay || name == BondOptDownDelay {
				options += ";miimon=100"
			}
			_, err := (&IfacerBond{Name: "bond0", Mode: mode, Options: options}).ParseOptions([]string{"eth1"})
			ok = err == nil
		}
		if !ok {
			t.Errorf("option %s=%s is refused in every mode", name, v)
		}
	}
}

// The configuration survives JSON both as a value and through a pointer:
// the trap of an embedded types.NetConf, whose pointer MarshalJSON would be
// promoted and write only its own fields.
func TestIfacerConfigMarshal(t *testing.T) {
	c := IfacerConfig{CNIVersion: "1.0.0", Name: "storage", Type: IfacerType, Interfaces: []string{"eth1", "eth2"}, VLANID: 200,
		Bond: &IfacerBond{Name: "bond0", Mode: 1, Options: "miimon=100"}}
	for _, v := range []any{c, &c} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		const want = `{"cniVersion":"1.0.0","name":"storage","type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":200,"bond":{"name":"bond0","mode":1,"options":"miimon=100"}}`
		if string(raw) != want {
			t.Errorf("%T marshals to\n%s\nwant\n%s", v, raw, want)
		}
		back, err := ParseIfacerConfig(raw)
		if err != nil || !reflect.DeepEqual(*back, c) {
			t.Errorf("round trip of %T: %+v, %v", v, back, err)
		}
	}
	// A plugin entry of a conflist carries no cniVersion or name of its own.
	raw, _ := json.Marshal(IfacerConfig{Type: IfacerType, Interfaces: []string{"eth1"}, VLANID: 100})
	if string(raw) != `{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":100}` {
		t.Errorf("conflist entry: %s", raw)
	}
}

func FuzzParseIfacerConfig(f *testing.F) {
	f.Add([]byte(`{"type":"berth-ifacer","interfaces":["eth1"],"vlanID":100}`))
	f.Add([]byte(`{"type":"berth-ifacer","interfaces":["eth1","eth2"],"vlanID":200,"bond":{"name":"bond0","mode":1,"options":"primary=eth1;miimon=100"}}`))
	f.Add([]byte(`{"type":"berth-ifacer","interfaces":["eth1","eth2"],"bond":{"name":"bond0","mode":4,"options":"lacp_rate=fast; xmit_hash_policy=layer3+4;ad_actor_system=02:00:00:00:00:01"}}`))
	f.Add([]byte(`{"type":"berth-ifacer","interfaces":["eth1"],"bond":{"name":"b","mode":1,"options":"arp_interval=100;arp_ip_target=10.0.0.1,10.0.0.2;arp_validate=3"}}`))
	f.Add([]byte(`{"type":"berth-ifacer","interfaces":["eth1",""],"vlanID":4095}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseIfacerConfig(data)
		if err != nil {
			if c != nil {
				t.Fatalf("a configuration and an error: %+v, %v", c, err)
			}
			return
		}
		// What passes is what the kernel can be asked for: a master name it
		// takes, options that parse again, and the same after a round trip.
		if err := ValidateInterfaceName(c.Master()); err != nil {
			t.Fatalf("valid configuration, invalid master %q: %v", c.Master(), err)
		}
		if c.Bond != nil {
			if _, err := c.Bond.ParseOptions(c.Interfaces); err != nil {
				t.Fatalf("valid configuration, options refused: %v", err)
			}
		}
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseIfacerConfig(raw)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip: %+v, %v; was %+v", back, err, c)
		}
	})
}
