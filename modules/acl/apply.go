package acl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/outcome"
)

// apply makes the planned changes: every user but the login user in one
// pipelined round trip, then the login user, then one save. If saving
// fails, every user is restored to its state before the task.
func (m *run) apply(ctx context.Context) error {
	login := m.srv.whoami
	var others, last []*change
	for _, c := range m.changes {
		if c.name == login {
			last = append(last, c)
		} else {
			others = append(others, c)
		}
	}
	done, err := m.send(ctx, m.client, others)
	if err != nil {
		return m.fail(ctx, m.client, done, err.Error())
	}
	finisher := m.client
	if m.finisher != "" {
		opts := m.opts.Options
		opts.LoginUser = m.finisher
		opts.LoginPassword = ansible.Secret(m.finisherPassword)
		c, err := conn.Open(&opts)
		if err != nil {
			return m.fail(ctx, m.client, done, fmt.Sprintf("failed to log in as %q to finish the run: %v", m.finisher, err))
		}
		defer c.Close()
		finisher = c
	}
	more, err := m.send(ctx, m.client, last)
	done = append(done, more...)
	if err != nil {
		return m.fail(ctx, m.client, done, err.Error())
	}
	if m.persistCmd != "" {
		var cmd valkey.Completed
		what := "ACL SAVE"
		switch m.persistCmd {
		case "acl|save":
			cmd = finisher.B().AclSave().Build()
		case "sentinel|flushconfig":
			cmd = finisher.B().Arbitrary("SENTINEL", "FLUSHCONFIG").Build()
			what = "SENTINEL FLUSHCONFIG"
		default:
			cmd = finisher.B().ConfigRewrite().Build()
			what = "CONFIG REWRITE"
		}
		if err := finisher.Do(ctx, cmd).Error(); err != nil {
			return m.fail(ctx, finisher, done, fmt.Sprintf("failed to save the users to %s (%s: %v)", m.fields.PersistedTo, what, err))
		}
		if testHookAfterSave != nil {
			testHookAfterSave()
		}
		if m.kept != nil {
			if err := m.kept.restore(); err != nil {
				return outcome.Partial("the users were changed and saved, but %v; fix its owner and mode by hand", err)
			}
		}
	}
	m.verify(ctx, finisher)
	return nil
}

// send applies changes in one pipelined round trip and returns the ones
// the server accepted.
func (m *run) send(ctx context.Context, c valkey.Client, changes []*change) ([]*change, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	cmds := make(valkey.Commands, len(changes))
	for i, ch := range changes {
		if ch.after == nil {
			cmds[i] = delUserCmd(c, ch.name)
		} else {
			cmds[i] = setUserCmd(c, ch.name, ch.after)
		}
	}
	var done []*change
	var firstErr error
	for i, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("the server refused the change of user %q: %v", changes[i].name, err)
			}
			continue
		}
		done = append(done, changes[i])
	}
	return done, firstErr
}

// fail restores the users changed so far (in reverse order; the finishing
// user itself last, since restoring it may end its rights) and returns the
// error to report.
func (m *run) fail(ctx context.Context, c valkey.Client, done []*change, why string) error {
	if len(done) == 0 {
		return errors.New(why)
	}
	var order, tail []*change
	for i := len(done) - 1; i >= 0; i-- {
		if done[i].name == m.finisher || (m.finisher == "" && done[i].name == m.srv.whoami) {
			tail = append(tail, done[i])
		} else {
			order = append(order, done[i])
		}
	}
	order = append(order, tail...)
	cmds := make(valkey.Commands, len(order))
	for i, ch := range order {
		if ch.before == nil {
			cmds[i] = delUserCmd(c, ch.name)
		} else {
			cmds[i] = setUserCmd(c, ch.name, ch.before)
		}
	}
	var failed []string
	for i, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			failed = append(failed, order[i].name)
		}
	}
	if len(failed) > 0 {
		return outcome.Partial("%s; restoring the users also failed for %s: the server's memory holds this task's changes for them", why, strings.Join(failed, ", "))
	}
	return fmt.Errorf("%s; the users were restored to their state before the task", why)
}

// verify re-reads the users and warns where the server reports something
// other than what was planned (the model and the server disagree).
func (m *run) verify(ctx context.Context, c valkey.Client) {
	user := m.srv.whoami
	if m.finisher != "" {
		user = m.finisher
	}
	if u := m.final[user]; u == nil || !m.srv.may(u, "acl|list") {
		return
	}
	lines, err := c.Do(ctx, c.B().AclList().Build()).AsStrSlice()
	if err != nil {
		m.res.Warn("could not re-read the users after applying: %v", err)
		return
	}
	now := map[string]*aclrule.User{}
	for _, line := range lines {
		if name, u, err := aclrule.ParseListLine(line); err == nil {
			now[name] = u
		}
	}
	for _, ch := range m.changes {
		got := now[ch.name]
		switch {
		case ch.after == nil && got != nil:
			m.res.Warn("user %q still exists after ACL DELUSER", ch.name)
		case ch.after != nil && (got == nil || !got.Equal(ch.after)):
			m.res.Warn("the server reports user %q differently than planned; please report this with the user's rules", ch.name)
		}
	}
}
