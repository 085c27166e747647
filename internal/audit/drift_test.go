package audit

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/testserver"
)

func adminDo(t *testing.T, srv *testserver.Server, args ...string) {
	t.Helper()
	c, err := conn.Open(&conn.Options{LoginPort: srv.Port, LoginUser: "admin", LoginPassword: ansible.Secret(adminPassword)})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Do(context.Background(), c.B().Arbitrary(args...).Build()).Error())
}

func desiredState() *Desired {
	return &Desired{
		Settings: map[string]any{"maxmemory": "100mb", "protected-mode": true, "requirepass": ""},
		Users: []map[string]any{
			{"name": "default", "enabled": false},
			{"name": "admin", "passwords": []any{adminPassword}},
			{"name": "app"},
		},
	}
}

func TestNoDriftWhenServerFileAndDesiredAgree(t *testing.T) {
	srv, _ := secureServer(t)
	g := gatherServer(t, srv, "admin", adminPassword)
	d, err := ComputeDrift(g, desiredState())
	require.NoError(t, err)
	assert.Empty(t, d.Settings)
	assert.Empty(t, d.Users)
}

func TestDriftDirectiveChangedAtRuntimeOnly(t *testing.T) {
	srv, _ := secureServer(t)
	adminDo(t, srv, "CONFIG", "SET", "maxmemory", "200mb")
	g := gatherServer(t, srv, "admin", adminPassword)
	d, err := ComputeDrift(g, desiredState())
	require.NoError(t, err)
	assert.Equal(t, SettingDrift{Desired: "104857600", Runtime: "209715200", File: "104857600", Differs: []string{"runtime"}}, d.Settings["maxmemory"])
	// Without a desired state, runtime vs file is still drift.
	d, err = ComputeDrift(g, nil)
	require.NoError(t, err)
	assert.Equal(t, SettingDrift{Runtime: "209715200", File: "104857600", Differs: []string{"runtime"}}, d.Settings["maxmemory"])
	assert.Len(t, d.Settings, 1, "%v", d.Settings)
}

func TestDriftDirectiveChangedInFileOnly(t *testing.T) {
	srv, _ := secureServer(t)
	conf := strings.Replace(string(srv.ReadConf()), "maxmemory 100mb", "maxmemory 300mb", 1)
	require.NoError(t, os.WriteFile(srv.ConfPath, []byte(conf), 0o640))
	g := gatherServer(t, srv, "admin", adminPassword)
	d, err := ComputeDrift(g, desiredState())
	require.NoError(t, err)
	assert.Equal(t, SettingDrift{Desired: "104857600", Runtime: "104857600", File: "314572800", Differs: []string{"file"}}, d.Settings["maxmemory"])
	assert.Len(t, d.Settings, 1)
}

func TestDriftUserAddedByHand(t *testing.T) {
	srv, _ := secureServer(t)
	adminDo(t, srv, "ACL", "SETUSER", "intruder", "on", ">intruder-Pw-1", "~*", "+@all")
	g := gatherServer(t, srv, "admin", adminPassword)
	d, err := ComputeDrift(g, desiredState())
	require.NoError(t, err)
	assert.Equal(t, UserDrift{Desired: "not listed", Runtime: "enabled", File: "absent", Differs: []string{"runtime"}}, d.Users["intruder"])
	assert.Len(t, d.Users, 1)
	// A desired user that is missing, and one that should be disabled.
	want := desiredState()
	want.Users = append(want.Users, map[string]any{"name": "report", "state": "present"}, map[string]any{"name": "intruder", "state": "absent"})
	d, err = ComputeDrift(g, want)
	require.NoError(t, err)
	assert.Equal(t, UserDrift{Desired: "present", Runtime: "absent", File: "absent", Differs: []string{"runtime", "file"}}, d.Users["report"])
	assert.Equal(t, UserDrift{Desired: "absent", Runtime: "enabled", File: "absent", Differs: []string{"runtime"}}, d.Users["intruder"])
}

func TestDriftNeverShowsSecrets(t *testing.T) {
	srv, _ := insecureServer(t)
	g := gatherServer(t, srv, "", insecureRequire)
	d, err := ComputeDrift(g, &Desired{Settings: map[string]any{"requirepass": "another-Pw-55"}})
	require.NoError(t, err)
	assert.Equal(t, SettingDrift{Desired: ansible.Mask, Runtime: ansible.Mask, File: ansible.Mask, Differs: []string{"runtime", "file"}}, d.Settings["requirepass"])
}

func TestDesiredValidation(t *testing.T) {
	for name, c := range map[string]struct {
		d   Desired
		msg string
	}{
		"bad value":      {Desired{Settings: map[string]any{"maxmemory": "lots"}}, `maxmemory`},
		"include":        {Desired{Settings: map[string]any{"include": "/x"}}, `directive "include" cannot be compared`},
		"user no name":   {Desired{Users: []map[string]any{{"state": "present"}}}, "desired.users[0]: name is required"},
		"user bad state": {Desired{Users: []map[string]any{{"name": "a", "state": "gone"}}}, "state must be present or absent"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ValidateDesired(&c.d)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}
