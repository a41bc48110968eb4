package coordinator

import "errors"

// undo records how to take back each change ADD made, so that a failed ADD
// leaves nothing behind: no veth, route or rule.
type undo struct {
	steps []func() error
}

func (u *undo) push(step func() error) { u.steps = append(u.steps, step) }

// run takes the changes back, newest first, and reports every step that
// failed.
func (u *undo) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}
