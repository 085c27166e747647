package settings

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/outcome"
)

// maxRefusals bounds the CONFIG SET retries after the server refuses a
// parameter as immutable or protected (one retry per refused parameter).
const maxRefusals = 64

// apply makes the planned changes: one CONFIG SET, then the file. If the
// file cannot be written, the runtime change is rolled back so the server
// and its file never disagree because of this run.
func (m *Engine) apply(ctx context.Context) error {
	applied, err := m.applyRuntime(ctx)
	if err != nil {
		return err
	}
	if m.cfg != nil && m.cfg.Changed() {
		backup, werr := conffile.WriteAtomic(m.fields.ConfigFile, m.cfg.Bytes(), conffile.WriteOptions{Backup: m.opts.Backup, NewFileMode: NewFileMode, Trust: m.trust})
		if werr != nil {
			// A backup of a file that was not replaced is no backup: it
			// goes, so that a failed run leaves nothing behind.
			if backup != "" {
				if rerr := os.Remove(backup); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
					m.res.Warn("failed to remove the backup %s of the file that was not written: %v", backup, rerr)
				}
			}
			if len(applied) == 0 {
				return fmt.Errorf("failed to write %s: %v", m.fields.ConfigFile, werr)
			}
			if rerr := m.rollback(ctx, applied); rerr != nil {
				for _, it := range m.items {
					it.setFile = false // the file was not written
				}
				return outcome.Partial("failed to write %s: %v; rolling back the runtime change of %s also failed (%v): the server runs with the new values and the file has the old ones",
					m.fields.ConfigFile, werr, names(applied), rerr)
			}
			return fmt.Errorf("failed to write %s: %v; the runtime change of %s was rolled back",
				m.fields.ConfigFile, werr, names(applied))
		}
		m.fields.BackupFile = backup
	}
	if m.srv != nil {
		serverNames := make([]string, 0, len(m.items))
		for _, it := range m.items {
			serverNames = append(serverNames, it.serverName)
		}
		after, err := m.srv.configGet(ctx, serverNames)
		if err != nil {
			m.res.Warn("%v", err)
			return nil
		}
		m.fields.Values = map[string]string{}
		m.fillValues(after)
		for _, it := range m.items {
			if !it.setRuntime {
				continue
			}
			if n, err := it.dir.FromServer(after[it.serverName]); err != nil || n.Canonical != it.desired.Canonical {
				m.res.Warn("the server accepted %s but now reports a different value than requested", it.dir.Name)
			}
		}
	}
	return nil
}

// applyRuntime sends one CONFIG SET for every runtime change. When the
// server refuses a parameter as immutable or protected, that directive is
// moved to restart_required (it is still written to the file) and the rest
// is sent again; any other refusal fails the task with nothing changed.
func (m *Engine) applyRuntime(ctx context.Context) ([]*item, error) {
	var todo []*item
	for _, it := range m.items {
		if it.setRuntime {
			todo = append(todo, it)
		}
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		pairs := make([]pair, len(todo))
		for i, it := range todo {
			pairs[i] = pair{it.serverName, it.desired.Set}
		}
		err := m.srv.configSet(ctx, pairs)
		if err == nil {
			return todo, nil
		}
		if _, isReply := valkey.IsValkeyErr(err); !isReply {
			// No answer at all (the server died, the network dropped): the
			// file is left alone, so a restarted server runs what it ran.
			return nil, outcome.Stated("the server did not answer the CONFIG SET (%v); the config file was not written, so nothing was changed there; check the server", err)
		}
		ref, ok := asRefusal(err)
		if !ok || attempt >= maxRefusals {
			return nil, fmt.Errorf("the server refused the change: %v", err)
		}
		var rest []*item
		found := false
		for _, it := range todo {
			if it.serverName == ref.param || slices.Contains(it.dir.Names(), ref.param) {
				found = true
				if m.opts.Strict {
					return nil, fmt.Errorf("directive %q needs a server restart to change (the server refused it as %s) and strict is set", it.key, ref.reason)
				}
				if !m.opts.file() {
					return nil, fmt.Errorf("directive %q cannot change while the server runs (the server refused it as %s); use persist: both or file and restart the server", it.key, ref.reason)
				}
				it.setRuntime, it.restart = false, true
				m.fields.RuntimeChanged = slices.DeleteFunc(m.fields.RuntimeChanged, func(n string) bool { return n == it.dir.Name })
				m.fields.RestartRequired = true
				m.fields.RestartRequiredDirectives = append(m.fields.RestartRequiredDirectives, it.dir.Name)
				m.res.Warn("the server refused to change %s at runtime (%s config): it is written to the file and needs a restart", it.dir.Name, ref.reason)
				continue
			}
			rest = append(rest, it)
		}
		if !found {
			return nil, fmt.Errorf("the server refused the change: %v", err)
		}
		todo = rest
	}
	m.res.Changed = len(m.fields.RuntimeChanged) > 0 || len(m.fields.FileChanged) > 0
	return nil, nil
}

// rollback restores the runtime values read before the run.
func (m *Engine) rollback(ctx context.Context, applied []*item) error {
	pairs := make([]pair, len(applied))
	for i, it := range applied {
		pairs[i] = pair{it.serverName, it.runtimeBefore}
	}
	return m.srv.configSet(ctx, pairs)
}

func names(items []*item) string {
	ns := make([]string, len(items))
	for i, it := range items {
		ns[i] = it.dir.Name
	}
	return strings.Join(ns, ", ")
}
