// Package outcome is the one way every module runs a task and fails: plan,
// stop in check mode or when nothing changes, guard the change journal,
// apply, record, report. It exists so that every module (and the next one)
// says the same thing about what changed when it fails:
//
//   - an error before the first side effect, or after the module undid what
//     it did, fails with changed=false, no diff, the module's change fields
//     cleared, and the message ends in "; nothing was changed" (added here,
//     never written by a module);
//   - an error after which something stayed changed is Partial: changed=true
//     and the message says what changed; the change is recorded in the
//     journal with partial: true, because it happened;
//   - an error whose message itself says what is known (Stated) is reported
//     as is, with changed=false.
//
// Check mode runs the same path as a real run and stops before the guard:
// the plan, changed and diff are the same in both.
//
// It is a package of its own, not part of internal/ansible, because it uses
// the change journal, which imports internal/ansible.
package outcome

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/journal"
)

// NothingChanged ends the message of every failure after which nothing
// changed.
const NothingChanged = "nothing was changed"

// Module is one task of a module, as the runner drives it.
type Module interface {
	// Plan reads the state (under the locks that guard the write: take
	// them with t.Lock) and fills t.Res: Changed, Diff, Fields, warnings.
	// It changes nothing outside the process.
	Plan(ctx context.Context, t *Task) error
	// Apply makes the planned change. An error means that nothing stayed
	// changed (the module undid what it did) unless it is Partial.
	Apply(ctx context.Context, t *Task) error
	// Record lists what Apply changed, for the journal; partial is set when
	// the task fails after changing it. Values of secrets are never in it.
	Record(partial bool) journal.Entry
	// Unchanged clears the module's fields that report a change, for a
	// failure after which nothing changed.
	Unchanged()
}

// Task is one run of a module.
type Task struct {
	Req *ansible.Request
	Res *ansible.Result
	// Journal are the module's journal options; a module that changes
	// nothing (the audit) leaves them zero and never reaches the guard.
	Journal journal.JournalOptions
	// Timeout bounds the whole task (server round trips and lock waits).
	Timeout time.Duration
	// NothingDone ends the message of a failure after which nothing
	// changed (default NothingChanged; the audit, which changes nothing,
	// says "the audit did not run").
	NothingDone string

	locks conffile.Locks
}

// LockTimeout bounds the wait for another run holding a directory lock.
const LockTimeout = 60 * time.Second

// Lock takes the lock of path's directory for the rest of the task (once
// per directory: taking it again is a no-op), outside check mode. Check
// mode reads without locks: it changes nothing a lock would protect.
func (t *Task) Lock(path string) error {
	if t.Req.CheckMode {
		return nil
	}
	return t.locks.Lock(path, LockTimeout)
}

// Run runs m as one task and returns its result.
func Run(t *Task, m Module) *ansible.Result {
	if t.Res == nil {
		t.Res = &ansible.Result{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.Timeout+LockTimeout)
	defer cancel()
	err := t.run(ctx, m)
	t.locks.Release()
	if err != nil {
		t.fail(err, m)
	}
	return t.Res
}

func (t *Task) run(ctx context.Context, m Module) error {
	if err := m.Plan(ctx, t); err != nil {
		return err
	}
	if t.Req.CheckMode || !t.Res.Changed {
		return nil
	}
	// A change that cannot be recorded is not made.
	warning, err := journal.Guard(t.Journal)
	if err != nil {
		return err
	}
	if warning != "" {
		t.Res.Warn("%s", warning)
	}
	aerr := m.Apply(ctx, t)
	if aerr != nil && !IsPartial(aerr) {
		return aerr
	}
	if warning != "" { // already warned: the journal cannot be written
		return aerr
	}
	e := m.Record(aerr != nil)
	w, jerr := journal.Append(t.Journal, e)
	if w != "" {
		t.Res.Warn("%s", w)
	}
	switch {
	case aerr != nil && jerr != nil:
		return Partial("%v; recording it also failed: %v", aerr, jerr)
	case jerr != nil:
		// The change happened: fail so that it does not go unnoticed.
		return Partial("the change of %s was applied but could not be recorded: %v", What(e), jerr)
	}
	return aerr
}

// fail reports err the one way every module does.
func (t *Task) fail(err error, m Module) {
	t.Res.Failed = true
	var p *partialError
	if errors.As(err, &p) {
		t.Res.Changed = true
		t.Res.Msg = p.msg
		return
	}
	t.Res.Changed = false
	t.Res.Diff = nil
	m.Unchanged()
	t.Res.Msg = Message(err)
	if t.NothingDone != "" && !errors.As(err, new(*statedError)) {
		t.Res.Msg = err.Error() + "; " + t.NothingDone
	}
}

// Message is the text of a failure after which nothing changed.
func Message(err error) string {
	var s *statedError
	if errors.As(err, &s) {
		return s.msg
	}
	return err.Error() + "; " + NothingChanged
}

// Fail is the result of a task refused before it started (bad options):
// nothing was changed.
func Fail(err error) *ansible.Result { return ansible.Fail(Message(err)) }

type partialError struct{ msg string }

func (e *partialError) Error() string { return e.msg }

// Partial is a failure after which something stayed changed; the message
// says what.
func Partial(format string, args ...any) error {
	return &partialError{fmt.Sprintf(format, args...)}
}

// IsPartial reports whether err is Partial.
func IsPartial(err error) bool {
	var p *partialError
	return errors.As(err, &p)
}

type statedError struct{ msg string }

func (e *statedError) Error() string { return e.msg }

// Stated is a failure whose message says itself what is known about the
// change (e.g. the server did not answer): it is reported as is, with
// changed=false.
func Stated(format string, args ...any) error {
	return &statedError{fmt.Sprintf(format, args...)}
}

// What names the changes of e for a message: directive names, then
// "users a, b", then "certificates p".
func What(e journal.Entry) string {
	var parts []string
	for _, k := range []struct{ kind, prefix string }{
		{journal.KindDirective, ""}, {journal.KindUser, "users "}, {journal.KindCertificate, "certificates "},
		{journal.KindClusterNode, "cluster nodes "},
	} {
		var names []string
		for _, c := range e.Changes {
			if c.Kind == k.kind {
				names = append(names, c.Name)
			}
		}
		if len(names) > 0 {
			parts = append(parts, k.prefix+strings.Join(names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
