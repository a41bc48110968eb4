package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/berth-io/berth/tests/multus"
	"github.com/berth-io/berth/tests/netsim"
)

// benchPods is how many pods one benchmark operation attaches and detaches;
// the percentiles are over them.
const benchPods = 200

// BenchmarkAttach measures ADD and DEL latency per pod as libcni sees it
// (fork and exec of every plugin of the chain included): the Berth chain
// and the reference chain macvlan + host-local in the same run, and the
// IPAM plugins alone. One operation is 200 pods, one after the other, each
// in a fresh netns of the same simulated node; it reports the p50 and p99
// of ADD and of DEL in milliseconds.
func BenchmarkAttach(b *testing.B) {
	netsim.RequireRoot(b)
	u, err := netsim.BuildUnderlay(context.Background(), netsim.UnderlayConfig{
		Gateway: []netip.Prefix{gw4, gw6},
		Nodes:   [][]netip.Prefix{{netip.MustParsePrefix(node4[0])}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Delete()
	node := u.Nodes[0]
	berth := macvlanChain("1.1.0", map[string]any{"mode": "underlay", "serviceCIDRs": serviceCIDRs, "podCIDRs": podCIDRs})
	for _, tc := range []struct {
		name  string
		netns bool
		att   func(i int, dir string) multus.Attachment
	}{
		{"chain=macvlan+berth-ipam+berth-coordinator", true, func(i int, _ string) multus.Attachment {
			return attachment(berth, iface("eth0", true, benchAddr(i)))
		}},
		{"chain=macvlan+berth-ipam", true, func(i int, _ string) multus.Attachment {
			return attachment(macvlanChain("1.1.0", nil), iface("eth0", true, benchAddr(i)))
		}},
		{"chain=macvlan+host-local", true, func(i int, dir string) multus.Attachment {
			conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "ref", "plugins": []any{map[string]any{
				"type": "macvlan", "master": netsim.Uplink, "mode": "bridge",
				"ipam": map[string]any{"type": "host-local", "subnet": "10.6.0.0/16", "rangeStart": "10.6.2.1", "gateway": "10.6.0.1",
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": dir},
			}}})
			return multus.Attachment{Network: "default/ref", IfName: "eth0", Config: conf}
		}},
		{"ipam=berth-ipam", false, func(i int, _ string) multus.Attachment {
			return multus.Attachment{Network: "default/bare", IfName: "eth0",
				Config:  []byte(`{"cniVersion":"1.1.0","name":"bare","type":"berth-ipam","ipam":{"type":"berth-ipam"}}`),
				CNIArgs: map[string]any{"berth.io/assignment": iface("eth0", true, benchAddr(i))}}
		}},
		{"ipam=host-local", false, func(i int, dir string) multus.Attachment {
			conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "bare", "type": "host-local",
				"ipam": map[string]any{"type": "host-local", "subnet": "10.6.0.0/16", "rangeStart": "10.6.2.1", "gateway": "10.6.0.1", "dataDir": dir}})
			return multus.Attachment{Network: "default/bare", IfName: "eth0", Config: conf}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := &multus.Runtime{BinDirs: binDirs, CacheDir: b.TempDir(), Exec: &netsim.PluginExec{NS: node}}
			dir := b.TempDir()
			var add, del []time.Duration
			for b.Loop() {
				for i := range benchPods {
					path := "/run/netns/berth-bench-unused"
					var pod *netsim.NS
					if tc.netns {
						b.StopTimer()
						if pod, err = netsim.CreateNS(context.Background(), "berth-bench"); err != nil {
							b.Fatal(err)
						}
						path = pod.Path
						b.StartTimer()
					}
					ref := multus.PodRef{Namespace: "bench", Name: fmt.Sprintf("pod-%d", i), UID: fmt.Sprint(i)}
					a := tc.att(i, dir)
					start := time.Now()
					if _, err := rt.Add(context.Background(), ref, path, a); err != nil {
						b.Fatal(err)
					}
					add = append(add, time.Since(start))
					start = time.Now()
					if err := rt.Del(context.Background(), ref, path, a); err != nil {
						b.Fatal(err)
					}
					del = append(del, time.Since(start))
					if pod != nil {
						b.StopTimer()
						if err := pod.Delete(); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				}
			}
			b.ReportMetric(percentile(add, 50), "add-p50-ms")
			b.ReportMetric(percentile(add, 99), "add-p99-ms")
			b.ReportMetric(percentile(del, 50), "del-p50-ms")
			b.ReportMetric(percentile(del, 99), "del-p99-ms")
		})
	}
}

// benchAddr is pod i's address: 10.6.3.0/16 onwards, away from the
// reference chain's range.
func benchAddr(i int) string {
	return netip.AddrFrom4([4]byte{10, 6, 3 + byte(i/250), byte(1 + i%250)}).String() + "/16"
}

func percentile(d []time.Duration, p int) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return float64(s[i].Microseconds()) / 1000
}
