package settings

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conffile/locktest"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/testserver"
)

func request(t *testing.T, check bool) *ansible.Request {
	t.Helper()
	b, err := json.Marshal(map[string]any{"_ansible_check_mode": check})
	require.NoError(t, err)
	req, err := ansible.ParseRequest("valkey_config", b)
	require.NoError(t, err)
	return req
}

func options(t *testing.T, srv *testserver.Server, settings map[string]any) Options {
	t.Helper()
	o := Options{Settings: settings}
	o.LoginPort = srv.Port
	o.JournalPath = filepath.Join(t.TempDir(), "changes.jsonl")
	require.NoError(t, o.Validate())
	return o
}

// TestCheckModeTakesNoLock: check mode plans while another run holds the
// lock (it changes nothing a lock protects), and says what a real run would.
func TestCheckModeTakesNoLock(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	locktest.Hold(t, srv.ConfPath)
	res := Converge(request(t, true), options(t, srv, map[string]any{"maxmemory": "20mb"}))
	require.False(t, res.Failed, res.Msg)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"maxmemory"}, res.Fields.(*Fields).RuntimeChanged)
	assert.Equal(t, "10485760", srv.ConfigGet("maxmemory"))
}

// TestServerGoneBeforeApply: the server dies between the plan and the
// CONFIG SET. The task cannot know whether the server applied it, says so,
// and leaves the file alone, so a restarted server runs what it ran.
func TestServerGoneBeforeApply(t *testing.T) {
	srv := testserver.Start(t, "maxmemory 10mb")
	before := srv.ReadConf()
	req := request(t, false)
	opts := options(t, srv, map[string]any{"maxmemory": "20mb"})
	e := New(req, opts)
	defer e.Close()
	killed := false
	res := outcome.Run(&outcome.Task{Req: req, Res: e.Result(), Journal: opts.JournalOptions, Timeout: opts.Timeout()}, &killBeforeApply{Engine: e, kill: func() {
		srv.Stop()
		killed = true
	}})
	require.True(t, killed)
	require.True(t, res.Failed)
	assert.False(t, res.Changed)
	assert.True(t, strings.HasPrefix(res.Msg, "the server did not answer the CONFIG SET ("), res.Msg)
	assert.True(t, strings.HasSuffix(res.Msg, "); the config file was not written, so nothing was changed there; check the server"), res.Msg)
	assert.Equal(t, before, srv.ReadConf())
}

// killBeforeApply is the engine with the server killed between its plan and
// its apply: the fault a real server gives on demand only this way.
type killBeforeApply struct {
	*Engine
	kill func()
}

func (k *killBeforeApply) Apply(ctx context.Context, t *outcome.Task) error {
	k.kill()
	return k.Engine.Apply(ctx, t)
}
