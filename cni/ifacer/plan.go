package ifacer

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-io/berth/api/cniconf"
)

// Link kinds as netlink's Link.Type() names them.
const (
	kindBond   = "bond"
	kindVLAN   = "vlan"
	kindDevice = "device"
)

// 802.1Q's EtherType: the only VLAN protocol berth-ifacer makes or accepts.
const vlanProto8021Q = 0x8100

// link is what planning needs to know of one interface of the node.
type link struct {
	name  string
	index int
	kind  string
	// up is the administrative state (IFF_UP), the one ADD sets.
	up bool
	// master is the ifindex of the bond or bridge it is enslaved to, 0 if
	// none.
	master int
	mtu    int
	// bondMode is a bond's mode.
	bondMode int32
	// parent, vlanID and vlanProto describe a VLAN sub-interface.
	parent    int
	vlanID    int32
	vlanProto int
	// addrs are its global unicast addresses (read for the interfaces of
	// the configuration only).
	addrs []netip.Prefix
}

// state is the node's interfaces as read at one moment.
type state struct {
	links []link
}

func (s state) byName(name string) (link, bool) {
	for _, l := range s.links {
		if l.name == name {
			return l, true
		}
	}
	return link{}, false
}

func (s state) nameOf(index int) string {
	for _, l := range s.links {
		if l.index == index {
			return l.name
		}
	}
	return fmt.Sprintf("ifindex %d", index)
}

type op int

const (
	opCreateBond op = iota
	opDown
	opEnslave
	opUp
	opCreateVLAN
)

// step is one change ADD makes to the node.
type step struct {
	op   op
	link string
	// master is the bond of opEnslave and the parent of opCreateVLAN.
	master string
	// vlanID is opCreateVLAN's.
	vlanID int32
	// mtu is opCreateBond's: the members' (their smallest), since enslaving
	// sets a member's MTU to the bond's and a new bond has 1500.
	mtu int
}

func (s step) String() string {
	switch s.op {
	case opCreateBond:
		return fmt.Sprintf("create bond %s (mtu %d)", s.link, s.mtu)
	case opDown:
		return "set " + s.link + " down"
	case opEnslave:
		return "enslave " + s.link + " to " + s.master
	case opUp:
		return "set " + s.link + " up"
	case opCreateVLAN:
		return fmt.Sprintf("create VLAN %s (id %d) on %s", s.link, s.vlanID, s.master)
	}
	return fmt.Sprintf("step %d on %s", s.op, s.link)
}

// missing says, for CHECK, what a step that is still needed means.
func (s step) missing() string {
	switch s.op {
	case opCreateBond, opCreateVLAN:
		return s.link + " does not exist"
	case opEnslave:
		return s.link + " is not enslaved to " + s.master
	case opUp:
		return s.link + " is down"
	}
	return ""
}

// conflictError is an interface of the node that stands in the way of the
// configuration: ADD will not change or remove what it did not make.
type conflictError struct {
	field string // of the configuration
	msg   string
}

func (e *conflictError) Error() string { return e.field + ": " + e.msg }

func conflict(field, format string, args ...any) error {
	return &conflictError{field: field, msg: fmt.Sprintf(format, args...)}
}

// plan returns the steps that make cfg's master exist and be up on a node
// in state st, in order, or the interface that stands in the way. It
// changes nothing, so what ADD does is tested without a kernel that has bond
// or VLAN links, and CHECK is the same plan being empty.
//
// What exists with the right kind, mode, parent and VLAN ID is kept;
// interfaces that are down are brought up, members not yet in the bond are
// enslaved (an ADD killed halfway leaves a bond the next one completes).
func plan(cfg *cniconf.IfacerConfig, st state) ([]step, error) {
	var steps []step
	var err error
	parentIndex := 0 // 0: the parent is made by this plan
	if cfg.Bond != nil {
		steps, parentIndex, err = planBond(cfg, st)
		if err != nil {
			return nil, err
		}
	} else {
		name := cfg.Interfaces[0]
		l, ok := st.byName(name)
		if !ok {
			return nil, conflict("interfaces[0]", "%s does not exist on the node", name)
		}
		if !l.up {
			steps = append(steps, step{op: opUp, link: name})
		}
		parentIndex = l.index
	}
	if cfg.VLANID == 0 {
		return steps, nil
	}
	vlan, err := planVLAN(cfg, st, parentIndex)
	if err != nil {
		return nil, err
	}
	return append(steps, vlan...), nil
}

func planBond(cfg *cniconf.IfacerConfig, st state) ([]step, int, error) {
	b := cfg.Bond
	bond, exists := st.byName(b.Name)
	if exists {
		if bond.kind != kindBond {
			return nil, 0, conflict("bond.name", "%s exists on the node and is %s, not a bond", b.Name, kindName(bond.kind))
		}
		if bond.bondMode != b.Mode {
			return nil, 0, conflict("bond.mode", "bond %s exists in mode %d (%s), the configuration asks for %d (%s)",
				b.Name, bond.bondMode, cniconf.BondModeName(bond.bondMode), b.Mode, cniconf.BondModeName(b.Mode))
		}
	}
	var steps []step
	var join []link
	mtu := 0
	for i, name := range cfg.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		m, ok := st.byName(name)
		switch {
		case !ok:
			return nil, 0, conflict(field, "%s does not exist on the node", name)
		case exists && m.master == bond.index:
			continue
		case m.master != 0:
			return nil, 0, conflict(field, "%s is enslaved to %s, not to %s", name, st.nameOf(m.master), b.Name)
		case len(m.addrs) > 0:
			// The node reaches something through it: enslaved, it would lose
			// those addresses' traffic, perhaps the node's own connection.
			return nil, 0, conflict(field, "%s has address %s: berth-ifacer does not enslave an interface the node uses; move the address to %s or remove it", name, m.addrs[0], b.Name)
		}
		join = append(join, m)
		if mtu == 0 || m.mtu < mtu {
			mtu = m.mtu
		}
	}
	if !exists {
		steps = append(steps, step{op: opCreateBond, link: b.Name, mtu: mtu})
	}
	for _, m := range join {
		// The kernel refuses to enslave an interface that is up.
		if m.up {
			steps = append(steps, step{op: opDown, link: m.name})
		}
		steps = append(steps, step{op: opEnslave, link: m.name, master: b.Name}, step{op: opUp, link: m.name})
	}
	if !exists || !bond.up {
		steps = append(steps, step{op: opUp, link: b.Name})
	}
	return steps, bond.index, nil
}

func planVLAN(cfg *cniconf.IfacerConfig, st state, parentIndex int) ([]step, error) {
	name, parent, id := cfg.Master(), cfg.Parent(), cfg.VLANID
	if v, ok := st.byName(name); ok {
		switch {
		case v.kind != kindVLAN:
			return nil, conflict("vlanID", "%s exists on the node and is %s, not a VLAN", name, kindName(v.kind))
		case v.parent != parentIndex || parentIndex == 0:
			return nil, conflict("vlanID", "%s exists on the node and is a VLAN of %s, not of %s", name, st.nameOf(v.parent), parent)
		case v.vlanID != id:
			return nil, conflict("vlanID", "%s exists on the node with VLAN ID %d, not %d", name, v.vlanID, id)
		case v.vlanProto != 0 && v.vlanProto != vlanProto8021Q:
			return nil, conflict("vlanID", "%s exists on the node as an 802.1ad (%#04x) VLAN, not 802.1Q", name, v.vlanProto)
		}
		if !v.up {
			return []step{{op: opUp, link: name}}, nil
		}
		return nil, nil
	}
	if parentIndex != 0 {
		// The kernel takes one VLAN of an ID per parent, whatever its name.
		for _, l := range st.links {
			if l.kind == kindVLAN && l.parent == parentIndex && l.vlanID == id {
				return nil, conflict("vlanID", "%s already has VLAN %d as %s; the main plugin expects it named %s", parent, id, l.name, name)
			}
		}
	}
	return []step{{op: opCreateVLAN, link: name, master: parent, vlanID: id}, {op: opUp, link: name}}, nil
}

// kindName is a kind with its article, for messages.
func kindName(kind string) string {
	switch kind {
	case kindDevice:
		return "a physical device"
	case "":
		return "of an unknown kind"
	}
	if strings.ContainsRune("aeio", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
