package ifacer

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/api/cniconf"
)

// fakeHost is a node in memory that answers like the kernel where it
// matters to ADD: names are unique (EEXIST), one VLAN per ID and parent,
// an interface that is up cannot be enslaved (EPERM), enslaving opens it,
// releasing closes it, and removing a bond releases its members and takes
// its VLANs with it. Every call is recorded; failOn makes one fail.
type fakeHost struct {
	st    state
	next  int
	calls []string
	// failOn is the call that fails, once (undo may make the same call),
	// or every time with failAlways.
	failOn     string
	failErr    error
	failAlways bool
	// beforeCreate runs as a create starts: another actor on the node.
	beforeCreate func(f *fakeHost, name string)
}

func newFakeHost(st state) *fakeHost {
	f := &fakeHost{st: state{links: slices.Clone(st.links)}, next: 100}
	return f
}

func (f *fakeHost) call(c string) error {
	f.calls = append(f.calls, c)
	if c == f.failOn {
		if !f.failAlways {
			f.failOn = ""
		}
		if f.failErr != nil {
			return f.failErr
		}
		return errors.New("injected failure")
	}
	return nil
}

func (f *fakeHost) find(name string) *link {
	for i := range f.st.links {
		if f.st.links[i].name == name {
			return &f.st.links[i]
		}
	}
	return nil
}

func (f *fakeHost) add(l link) {
	f.next++
	l.index = f.next
	f.st.links = append(f.st.links, l)
}

func (f *fakeHost) observe([]string) (state, error) {
	if err := f.call("observe"); err != nil {
		return state{}, err
	}
	return state{links: slices.Clone(f.st.links)}, nil
}

func (f *fakeHost) createBond(name string, mode int32, opts []cniconf.BondOption, mtu int) error {
	if f.beforeCreate != nil {
		f.beforeCreate(f, name)
	}
	if err := f.call(fmt.Sprintf("create bond %s mode %d mtu %d options %d", name, mode, mtu, len(opts))); err != nil {
		return err
	}
	if f.find(name) != nil {
		return unix.EEXIST
	}
	f.add(link{name: name, kind: kindBond, bondMode: mode, mtu: mtu})
	return nil
}

func (f *fakeHost) createVLAN(name, parent string, id int32) error {
	if f.beforeCreate != nil {
		f.beforeCreate(f, name)
	}
	if err := f.call(fmt.Sprintf("create vlan %s on %s id %d", name, parent, id)); err != nil {
		return err
	}
	p := f.find(parent)
	if p == nil {
		return unix.ENODEV
	}
	if f.find(name) != nil {
		return unix.EEXIST
	}
	for _, l := range f.st.links {
		if l.kind == kindVLAN && l.parent == p.index && l.vlanID == id {
			return unix.EEXIST
		}
	}
	f.add(link{name: name, kind: kindVLAN, parent: p.index, vlanID: id, vlanProto: vlanProto8021Q, mtu: p.mtu})
	return nil
}

func (f *fakeHost) setUp(name string, up bool) error {
	verb := "down"
	if up {
		verb = "up"
	}
	if err := f.call(verb + " " + name); err != nil {
		return err
	}
	l := f.find(name)
	if l == nil {
		return unix.ENODEV
	}
	l.up = up
	return nil
}

func (f *fakeHost) setMaster(name, master string) error {
	if err := f.call("master " + name + " " + master); err != nil {
		return err
	}
	l := f.find(name)
	if l == nil {
		return unix.ENODEV
	}
	if master == "" {
		l.master, l.up = 0, false
		return nil
	}
	m := f.find(master)
	if m == nil {
		return unix.ENODEV
	}
	switch {
	case l.master == m.index:
		return nil
	case l.master != 0:
		return unix.EBUSY
	case l.up:
		return unix.EPERM
	}
	l.master, l.up, l.mtu = m.index, true, m.mtu
	return nil
}

func (f *fakeHost) remove(name string) error {
	if err := f.call("remove " + name); err != nil {
		return err
	}
	l := f.find(name)
	if l == nil {
		return nil
	}
	gone := l.index
	var kept []link
	for _, o := range f.st.links {
		switch {
		case o.index == gone, o.kind == kindVLAN && o.parent == gone:
			continue
		case o.master == gone:
			o.master, o.up = 0, false
		}
		kept = append(kept, o)
	}
	f.st.links = kept
	return nil
}

// The node of the apply tests: eth1 up, eth2 down, both 9000 bytes.
func applyNode() state { return node(veth("eth1", 2, true), veth("eth2", 3, false)) }

// From nothing, ADD makes bond and VLAN in the order the kernel needs,
// and a second ADD finds everything made and changes nothing.
func TestEnsureMakesThenKeeps(t *testing.T) {
	f := newFakeHost(applyNode())
	cfg := bondConf(200, "eth1", "eth2")
	if err := ensure(f, cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"observe", "create bond bond0 mode 1 mtu 9000 options 2", "down eth1", "master eth1 bond0", "up eth1",
		"master eth2 bond0", "up eth2", "up bond0", "create vlan bond0.200 on bond0 id 200", "up bond0.200"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls\n  %s\nwant\n  %s", strings.Join(f.calls, "\n  "), strings.Join(want, "\n  "))
	}
	if err := check(cfg, f.st); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	f.calls = nil
	if err := ensure(f, cfg); err != nil || !slices.Equal(f.calls, []string{"observe"}) {
		t.Errorf("second ADD: %v, calls %v; want only a read", err, f.calls)
	}
}

// Whichever step fails, the node is left exactly as it was found, and the
// error names the step.
func TestEnsureUndoesEveryStep(t *testing.T) {
	cfg := bondConf(200, "eth1", "eth2")
	clean := newFakeHost(applyNode())
	if err := ensure(clean, cfg); err != nil {
		t.Fatal(err)
	}
	for _, failing := range clean.calls {
		t.Run(failing, func(t *testing.T) {
			f := newFakeHost(applyNode())
			f.failOn = failing
			err := ensure(f, cfg)
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("error %v, want the injected failure", err)
			}
			if strings.Contains(err.Error(), "undoing") {
				t.Errorf("undo failed: %v", err)
			}
			if !reflect.DeepEqual(f.st, applyNode()) {
				t.Errorf("node after the failure\n  %+v\nwant\n  %+v", f.st.links, applyNode().links)
			}
		})
	}
}

// The error of a failed step says which step, and what the errno means.
func TestEnsureErrors(t *testing.T) {
	for _, tc := range []struct {
		failOn string
		err    error
		want   string
	}{
		{"create bond bond0 mode 1 mtu 9000 options 2", unix.EOPNOTSUPP,
			"create bond bond0 (mtu 9000): operation not supported (this kernel has no bond link type: load the bonding module)"},
		{"create bond bond0 mode 1 mtu 9000 options 2", unix.EACCES,
			"create bond bond0 (mtu 9000): permission denied (an option is not allowed in this bonding mode)"},
		{"create vlan bond0.200 on bond0 id 200", unix.EOPNOTSUPP,
			"create VLAN bond0.200 (id 200) on bond0: operation not supported (this kernel has no vlan link type (load the 8021q module), or bond0 cannot carry VLANs)"},
		{"master eth2 bond0", unix.EBUSY,
			"enslave eth2 to bond0: device or resource busy (eth2 is in use: another master, or macvlan/ipvlan interfaces on it)"},
		{"observe", unix.ENOBUFS, "reading the node's interfaces: no buffer space available"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			f := newFakeHost(applyNode())
			f.failOn, f.failErr = tc.failOn, tc.err
			err := ensure(f, bondConf(200, "eth1", "eth2"))
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %q wrapping %v", err, tc.want, tc.err)
			}
		})
	}
}

// Undo goes on past a failure and reports what it could not put back.
func TestEnsureReportsFailedUndo(t *testing.T) {
	f := newFakeHost(applyNode())
	f.failOn = "create vlan bond0.200 on bond0 id 200"
	err := ensure(&failRemove{fakeHost: f}, bondConf(200, "eth1", "eth2"))
	if err == nil || !strings.HasSuffix(err.Error(), "injected failure (and undoing: removing bond0: cannot remove)") {
		t.Fatalf("error %v, want the failure and the failed undo", err)
	}
	// The members were still released and restored: only the bond stayed.
	if l := f.find("eth1"); l == nil || l.master != 0 || !l.up {
		t.Errorf("eth1 after undo: %+v, want released and up as it was", l)
	}
	if l := f.find("eth2"); l == nil || l.master != 0 || l.up {
		t.Errorf("eth2 after undo: %+v, want released and down as it was", l)
	}
}

type failRemove struct{ *fakeHost }

func (f *failRemove) remove(name string) error {
	f.calls = append(f.calls, "remove "+name)
	return errors.New("cannot remove")
}

// Another actor creates the bond between ADD's read and its create: ADD
// reads again, keeps that bond, and goes on. If ADD then fails, it removes
// only what it made itself.
func TestEnsureRaces(t *testing.T) {
	theirs := func(f *fakeHost, name string) {
		if name == "bond0" && f.find("bond0") == nil {
			f.add(bondLink("bond0", 0, 1, true))
			b := f.find("bond0")
			for _, m := range []string{"eth1", "eth2"} {
				l := f.find(m)
				l.master, l.up = b.index, true
			}
		}
	}
	t.Run("kept", func(t *testing.T) {
		f := newFakeHost(applyNode())
		f.beforeCreate = theirs
		if err := ensure(f, bondConf(200, "eth1", "eth2")); err != nil {
			t.Fatal(err)
		}
		want := []string{"observe", "create bond bond0 mode 1 mtu 9000 options 2", "observe", "create vlan bond0.200 on bond0 id 200", "up bond0.200"}
		if !slices.Equal(f.calls, want) {
			t.Errorf("calls %v, want %v", f.calls, want)
		}
	})
	t.Run("theirs survives our failure", func(t *testing.T) {
		f := newFakeHost(applyNode())
		f.beforeCreate = theirs
		f.failOn = "up bond0.200"
		if err := ensure(f, bondConf(200, "eth1", "eth2")); err == nil {
			t.Fatal("ADD succeeded; want the injected failure")
		}
		if f.find("bond0") == nil || f.find("bond0.200") != nil {
			t.Errorf("after undo: %+v; want their bond0 kept and our bond0.200 removed", f.st.links)
		}
	})
	t.Run("they made something else", func(t *testing.T) {
		f := newFakeHost(applyNode())
		f.beforeCreate = func(f *fakeHost, name string) {
			if name == "bond0" && f.find("bond0") == nil {
				f.add(link{name: "bond0", kind: "bridge"})
			}
		}
		err := ensure(f, bondConf(200, "eth1", "eth2"))
		if err == nil || err.Error() != "bond.name: bond0 exists on the node and is a bridge, not a bond" {
			t.Errorf("error %v, want the bridge named", err)
		}
	})
	t.Run("the name never frees", func(t *testing.T) {
		f := newFakeHost(applyNode())
		f.failOn, f.failErr, f.failAlways = "create bond bond0 mode 1 mtu 9000 options 2", unix.EEXIST, true
		err := ensure(f, bondConf(200, "eth1", "eth2"))
		if err == nil || !strings.Contains(err.Error(), "kept changing while berth-ifacer worked (3 attempts)") {
			t.Errorf("error %v, want it to give up after 3 attempts", err)
		}
	})
}

// Every option cniconf accepts reaches a field of netlink's bond: none is
// parsed and then dropped.
func TestSetBondOptionsCoversEveryOption(t *testing.T) {
	value := map[string]string{
		cniconf.BondOptPrimary: "eth1", cniconf.BondOptARPIPTarget: "10.0.0.1", cniconf.BondOptADActorSystem: "02:00:00:00:00:01",
	}
	for _, name := range cniconf.BondOptionNames() {
		v := value[name]
		if v == "" {
			v = "1"
		}
		var opts []cniconf.BondOption
		for mode := int32(0); mode <= 6 && opts == nil; mode++ {
			options := name + "=" + v
			if name == cniconf.BondOptUpDelay || name == cniconf.BondOptDownDelay {
				options += ";miimon=100"
			}
			opts, _ = (&cniconf.IfacerBond{Name: "bond0", Mode: mode, Options: options}).ParseOptions([]string{"eth1"})
		}
		if opts == nil {
			t.Fatalf("%s=%s parses in no mode", name, v)
		}
		b := newTestBond()
		if err := setBondOptions(b, opts[:1], func(string) (int, error) { return 7, nil }); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if reflect.DeepEqual(b, newTestBond()) {
			t.Errorf("%s=%s sets nothing on the netlink bond", name, v)
		}
	}
}

func newTestBond() *netlink.Bond { return netlink.NewLinkBond(netlink.NewLinkAttrs()) }
