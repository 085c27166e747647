package sentinel

import (
	"context"
	"fmt"
	"strings"

	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
)

// Apply sends the planned commands in order. Sentinel has no transaction
// over its own commands: a refusal after the first command fails the task
// as Partial, naming what was applied. Then it re-reads the Sentinel and its
// file: the report is what the Sentinel now says, and a change Sentinel did
// not persist to its file fails the task.
func (r *run) Apply(ctx context.Context, t *outcome.Task) error {
	c := r.client
	for i, s := range r.steps {
		res := c.Do(ctx, cmd(c, s.args...))
		err := res.Error()
		if err == nil && s.args[1] == "RESET" {
			// RESET takes a pattern and answers how many monitors matched:
			// exactly the one named, or the escaping is wrong.
			if n, _ := res.AsInt64(); n != 1 {
				err = fmt.Errorf("it reset %d monitors, expected 1", n)
			}
		}
		if err != nil {
			what := fmt.Sprintf("the Sentinel refused SENTINEL %s %s: %s", s.args[1], r.req.Masked(s.args[2]), r.req.Masked(err.Error()))
			if i == 0 {
				return fmt.Errorf("%s", what)
			}
			return outcome.Partial("%s; applied before it: %s", what, outcome.What(journal.Entry{Changes: r.done}))
		}
		r.done = append(r.done, s.changes...)
	}
	after, err := readState(ctx, c, r.before.configFile, r.trust)
	if err != nil {
		return outcome.Partial("the change of %s was applied, but re-reading the Sentinel failed: %v", outcome.What(journal.Entry{Changes: r.done}), err)
	}
	r.report(after)
	if after.fileRead {
		if missing := r.unpersisted(after); len(missing) > 0 {
			return outcome.Partial("the Sentinel applied %s at runtime, but its config file %s does not hold %s: Sentinel could not rewrite it (check the file's directory is writable by the Sentinel's user)",
				outcome.What(journal.Entry{Changes: r.done}), after.configFile, strings.Join(missing, ", "))
		}
	}
	return nil
}

// unpersisted lists what the task set that the re-read file does not hold.
func (r *run) unpersisted(st *sentinelState) []string {
	var out []string
	for _, m := range r.opts.Monitors {
		ms := st.monitors[m.Name]
		switch {
		case m.state() == StateAbsent:
		case ms == nil || !ms.inFile:
			out = append(out, "monitor "+m.Name)
		case m.AuthPass.IsSet() && ms.authPass != m.AuthPass.Reveal():
			out = append(out, "auth-pass of "+m.Name)
		case m.AuthUser != "" && ms.authUser != m.AuthUser:
			out = append(out, "auth-user of "+m.Name)
		}
	}
	return out
}

// Record is the journal entry of what Apply did.
func (r *run) Record(partial bool) journal.Entry {
	e := journal.NewEntry(r.req, r.opts.Options.Address(), r.opts.Options.LoginPort)
	e.Instance = journal.InstanceName(r.before.configFile) // sentinel.conf: "sentinel"
	e.Changes = r.done
	e.Partial = partial
	return e
}
