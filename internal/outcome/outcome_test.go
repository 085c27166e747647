package outcome

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/journal"
)

// step is a module made of functions: the runner is the unit under test.
type step struct {
	plan      func(t *Task) error
	apply     func() error
	applied   bool
	unchanged bool
	partial   *bool
}

func (s *step) Plan(_ context.Context, t *Task) error {
	t.Res.Changed = true
	t.Res.Diff = []ansible.DiffEntry{{Before: "a\n", After: "b\n"}}
	if s.plan != nil {
		return s.plan(t)
	}
	return nil
}

func (s *step) Apply(context.Context, *Task) error {
	s.applied = true
	if s.apply != nil {
		return s.apply()
	}
	return nil
}

func (s *step) Record(partial bool) journal.Entry {
	s.partial = &partial
	e := journal.NewEntry(nil, "", 0)
	e.Changes = []journal.Change{{Kind: journal.KindDirective, Name: "maxmemory"}, {Kind: journal.KindUser, Name: "app"}}
	return e
}

func (s *step) Unchanged() { s.unchanged = true }

func task(t *testing.T, check bool) (*Task, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	return &Task{Req: &ansible.Request{Module: "test", CheckMode: check}, Journal: journal.JournalOptions{JournalPath: path}}, path
}

func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "\n")
}

func TestRun(t *testing.T) {
	cases := []struct {
		name    string
		check   bool
		m       *step
		failed  bool
		changed bool
		msg     string
		applied bool
		journal int
		partial bool
	}{
		{name: "success", m: &step{}, changed: true, applied: true, journal: 1},
		{name: "check mode stops before apply", check: true, m: &step{}, changed: true},
		{name: "plan error", m: &step{plan: func(*Task) error { return errors.New("bad plan") }},
			failed: true, msg: "bad plan; nothing was changed"},
		{name: "apply error undone", m: &step{apply: func() error { return errors.New("refused; rolled back") }},
			failed: true, msg: "refused; rolled back; nothing was changed", applied: true},
		{name: "apply error stated", m: &step{apply: func() error { return Stated("no answer; check the server") }},
			failed: true, msg: "no answer; check the server", applied: true},
		{name: "apply partial", m: &step{apply: func() error { return Partial("half of it stayed") }},
			failed: true, changed: true, msg: "half of it stayed", applied: true, journal: 1, partial: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, path := task(t, tc.check)
			res := Run(tk, tc.m)
			assert.Equal(t, tc.failed, res.Failed)
			assert.Equal(t, tc.changed, res.Changed)
			assert.Equal(t, tc.msg, res.Msg)
			assert.Equal(t, tc.applied, tc.m.applied)
			assert.Equal(t, tc.journal, lines(t, path))
			if tc.failed && !tc.changed {
				assert.Nil(t, res.Diff, "a failure that changed nothing shows no diff")
				assert.True(t, tc.m.unchanged, "the module's change fields are cleared")
			}
			if tc.journal > 0 {
				require.NotNil(t, tc.m.partial)
				assert.Equal(t, tc.partial, *tc.m.partial)
			}
		})
	}
}

// TestRunJournal: a journal that cannot be written stops the task before
// the first side effect; one that breaks after the change fails the task
// saying the change was applied.
func TestRunJournal(t *testing.T) {
	t.Run("unwritable before", func(t *testing.T) {
		tk, path := task(t, false)
		require.NoError(t, os.Mkdir(path, 0o755)) // a directory where the file goes
		m := &step{}
		res := Run(tk, m)
		assert.True(t, res.Failed)
		assert.False(t, res.Changed)
		assert.False(t, m.applied)
		assert.True(t, strings.HasPrefix(res.Msg, "cannot record the change: "), res.Msg)
		assert.True(t, strings.HasSuffix(res.Msg, "; nothing was changed"), res.Msg)
	})
	t.Run("unwritable after", func(t *testing.T) {
		tk, path := task(t, false)
		m := &step{apply: func() error {
			// The fault a real disk gives on demand only as root: the
			// journal replaced by a directory between check and append.
			if err := os.Remove(path); err != nil {
				return err
			}
			return os.Mkdir(path, 0o755)
		}}
		res := Run(tk, m)
		assert.True(t, res.Failed)
		assert.True(t, res.Changed)
		assert.True(t, strings.HasPrefix(res.Msg, "the change of maxmemory; users app was applied but could not be recorded: "), res.Msg)
	})
	t.Run("not required", func(t *testing.T) {
		tk, path := task(t, false)
		require.NoError(t, os.Mkdir(path, 0o755))
		no := false
		tk.Journal.JournalRequired = &no
		m := &step{}
		res := Run(tk, m)
		assert.False(t, res.Failed, res.Msg)
		assert.True(t, m.applied)
		require.Len(t, res.Warnings, 1)
		assert.Contains(t, res.Warnings[0], "journal_required is false, so the change is applied without a record")
	})
}

func TestFail(t *testing.T) {
	res := Fail(errors.New(`option "persist": "x" is not one of runtime, file, both`))
	assert.Equal(t, `option "persist": "x" is not one of runtime, file, both; nothing was changed`, res.Msg)
	assert.True(t, res.Failed)
	assert.False(t, res.Changed)
}
