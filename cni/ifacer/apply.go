package ifacer

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-io/berth/api/cniconf"
)

// host is the node's netlink as berth-ifacer uses it: reading the
// interfaces, the changes a plan is made of, and removal for undo. Tests
// replace it to fail at every step.
type host interface {
	// observe reads every interface of the node, with the global addresses
	// of those named in withAddrs.
	observe(withAddrs []string) (state, error)
	createBond(name string, mode int32, opts []cniconf.BondOption, mtu int) error
	createVLAN(name, parent string, id int32) error
	setUp(name string, up bool) error
	// setMaster enslaves name to master; master "" releases it.
	setMaster(name, master string) error
	remove(name string) error
}

// maxAttempts bounds how often ensure reads the node again after another
// actor created an interface between its read and its write.
const maxAttempts = 3

// errRaced says a create found the name taken: someone made the interface
// since the node was read, so the plan is made again from a new read.
var errRaced = errors.New("the name was taken meanwhile")

// ensure makes cfg's master exist and be up, or leaves the node as it
// found it: on failure every change it made is undone, newest first.
func ensure(h host, cfg *cniconf.IfacerConfig) (err error) {
	var opts []cniconf.BondOption
	if cfg.Bond != nil {
		if opts, err = cfg.Bond.ParseOptions(cfg.Interfaces); err != nil {
			return fmt.Errorf("bond.%w", err)
		}
	}
	u := &undoLog{h: h}
	defer func() {
		if err != nil {
			if uerr := u.run(); uerr != nil {
				err = fmt.Errorf("%w (and undoing: %w)", err, uerr)
			}
		}
	}()
	for attempt := 1; ; attempt++ {
		var st state
		if st, err = h.observe(cfg.Interfaces); err != nil {
			return fmt.Errorf("reading the node's interfaces: %w", err)
		}
		var steps []step
		if steps, err = plan(cfg, st); err != nil {
			return err
		}
		if err = apply(h, cfg, opts, steps, u); err == nil || !errors.Is(err, errRaced) {
			return err
		}
		// What this ADD made so far stays (and stays in the undo log): the
		// new plan keeps it, and a later failure still removes it.
		if attempt == maxAttempts {
			return fmt.Errorf("the node's interfaces kept changing while berth-ifacer worked (%d attempts): %w", attempt, err)
		}
	}
}

// apply runs steps in order, recording in u how to undo each one done.
func apply(h host, cfg *cniconf.IfacerConfig, opts []cniconf.BondOption, steps []step, u *undoLog) error {
	for _, s := range steps {
		var err error
		var undo step
		switch s.op {
		case opCreateBond:
			err = h.createBond(s.link, cfg.Bond.Mode, opts, s.mtu)
			undo = step{op: opRemove, link: s.link}
		case opCreateVLAN:
			err = h.createVLAN(s.link, s.master, s.vlanID)
			undo = step{op: opRemove, link: s.link}
		case opDown:
			err = h.setUp(s.link, false)
			undo = step{op: opUp, link: s.link}
		case opUp:
			err = h.setUp(s.link, true)
			undo = step{op: opDown, link: s.link}
		case opEnslave:
			err = h.setMaster(s.link, s.master)
			undo = step{op: opRelease, link: s.link, master: s.master}
		}
		if err != nil {
			if (s.op == opCreateBond || s.op == opCreateVLAN) && errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%s: %w", s, errRaced)
			}
			return fmt.Errorf("%s: %w%s", s, err, hint(s, err))
		}
		u.steps = append(u.steps, undo)
	}
	return nil
}

// Undo-only operations.
const (
	opRemove op = iota + 100
	opRelease
)

// undoLog holds the inverse of each change made, in the order made.
type undoLog struct {
	h     host
	steps []step
}

// run undoes every change, newest first, going on past failures so that
// as little as possible is left; it reports what it could not undo.
func (u *undoLog) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		var err error
		switch s.op {
		case opRemove:
			err = u.h.remove(s.link)
		case opRelease:
			err = u.h.setMaster(s.link, "")
		case opUp, opDown:
			err = u.h.setUp(s.link, s.op == opUp)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", undoString(s), err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}

func undoString(s step) string {
	switch s.op {
	case opRemove:
		return "removing " + s.link
	case opRelease:
		return "releasing " + s.link + " from " + s.master
	}
	return s.String()
}

// hint explains the errno of a failed step the way an operator can act on
// it; the kernel's own message stays in its log.
func hint(s step, err error) string {
	switch {
	case s.op == opCreateBond && errors.Is(err, unix.EOPNOTSUPP):
		return " (this kernel has no bond link type: load the bonding module)"
	case s.op == opCreateBond && errors.Is(err, unix.EACCES):
		return " (an option is not allowed in this bonding mode)"
	case s.op == opCreateVLAN && errors.Is(err, unix.EOPNOTSUPP):
		return " (this kernel has no vlan link type (load the 8021q module), or " + s.master + " cannot carry VLANs)"
	case s.op == opEnslave && errors.Is(err, unix.EBUSY):
		return " (" + s.link + " is in use: another master, or macvlan/ipvlan interfaces on it)"
	case s.op == opEnslave && errors.Is(err, unix.EPERM):
		return " (the kernel refuses to enslave an interface that is up)"
	}
	return ""
}
