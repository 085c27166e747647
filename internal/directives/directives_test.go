package directives

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configGetNames reads testdata/valkey-8.0-config-get.txt (CONFIG GET *
// output, name and value on alternating lines) and returns name -> value.
func configGetNames(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/valkey-8.0-config-get.txt")
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	require.Zero(t, len(lines)%2, "name/value lines must pair up")
	out := map[string]string{}
	for i := 0; i < len(lines); i += 2 {
		out[lines[i]] = lines[i+1]
	}
	return out
}

func TestEveryValkey8NameResolves(t *testing.T) {
	names := configGetNames(t)
	require.Greater(t, len(names), 200)
	for name := range names {
		_, ok := Lookup(name)
		assert.True(t, ok, "CONFIG GET * name %q is not in the table", name)
	}
}

func TestEveryValkey8ValueNormalises(t *testing.T) {
	// Every value the real server printed must be accepted by FromServer.
	for name, value := range configGetNames(t) {
		d, ok := Lookup(name)
		require.True(t, ok, name)
		v, err := d.FromServer(value)
		if assert.NoError(t, err, "%s = %q", name, value) {
			assert.NotNil(t, v.Args, name)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"canonical", "primaryauth", "primaryauth"},
		{"alias masterauth", "masterauth", "primaryauth"},
		{"alias masteruser", "masteruser", "primaryuser"},
		{"alias slaveof", "slaveof", "replicaof"},
		{"alias slave-read-only", "slave-read-only", "replica-read-only"},
		{"case insensitive", "MaxMemory-Policy", "maxmemory-policy"},
		{"surrounding space", "  hz ", "hz"},
		{"ziplist alias", "hash-max-ziplist-entries", "hash-max-listpack-entries"},
		{"ziplist value alias", "zset-max-ziplist-value", "zset-max-listpack-value"},
		{"list ziplist alias", "list-max-ziplist-size", "list-max-listpack-size"},
		{"lua-time-limit", "lua-time-limit", "busy-reply-threshold"},
		{"underscore cpulist", "bgsave_cpulist", "bgsave-cpulist"},
		{"commandlog 8.1 name", "commandlog-execution-slower-than", "slowlog-log-slower-than"},
		{"cluster slave alias", "cluster-slave-validity-factor", "cluster-replica-validity-factor"},
		{"min-slaves", "min-slaves-to-write", "min-replicas-to-write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := Lookup(tt.query)
			require.True(t, ok)
			assert.Equal(t, tt.want, d.Name)
		})
	}
	_, ok := Lookup("no-such-directive")
	assert.False(t, ok)
}

func TestTableInvariants(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range All() {
		for _, n := range d.Names() {
			assert.Equal(t, strings.ToLower(n), n, "names are lowercase")
			assert.False(t, seen[n], "duplicate %s", n)
			seen[n] = true
		}
		if d.Kind == Enum || d.Kind == Flags {
			assert.NotEmpty(t, d.Choices, d.Name)
		} else {
			assert.Empty(t, d.Choices, d.Name)
		}
		if d.PercentOK {
			assert.Equal(t, Memory, d.Kind, d.Name)
		}
		if d.Min != nil && d.Max != nil {
			assert.LessOrEqual(t, *d.Min, *d.Max, d.Name)
		}
	}
	all := All()
	for i := 1; i < len(all); i++ {
		assert.Less(t, all[i-1].Name, all[i].Name, "All is sorted")
	}
}

func TestFlags(t *testing.T) {
	want := map[string]struct{ immutable, protected, secret, accumulates bool }{
		"aclfile":                  {immutable: true},
		"unixsocket":               {immutable: true},
		"unixsocketperm":           {immutable: true},
		"unixsocketgroup":          {immutable: true},
		"databases":                {immutable: true},
		"daemonize":                {immutable: true},
		"enable-debug-command":     {immutable: true},
		"enable-module-command":    {immutable: true},
		"enable-protected-configs": {immutable: true},
		"supervised":               {immutable: true},
		"pidfile":                  {immutable: true},
		"syslog-enabled":           {immutable: true},
		"syslog-ident":             {immutable: true},
		"syslog-facility":          {immutable: true},
		"cluster-enabled":          {immutable: true},
		"cluster-config-file":      {immutable: true},
		"tcp-backlog":              {immutable: true},
		"io-threads":               {immutable: true},
		"always-show-logo":         {immutable: true},
		"logfile":                  {immutable: true},
		"disable-thp":              {immutable: true},
		"replicaof":                {immutable: true},
		"dir":                      {protected: true},
		"dbfilename":               {protected: true},
		"requirepass":              {secret: true},
		"masterauth":               {secret: true},
		"primaryuser":              {secret: true},
		"tls-key-file-pass":        {secret: true},
		"tls-client-key-file-pass": {secret: true},
		"save":                     {accumulates: true},
		"maxmemory":                {},
		"port":                     {},
		"appendonly":               {},
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			d, ok := Lookup(name)
			require.True(t, ok)
			assert.Equal(t, w.immutable, d.Immutable, "Immutable")
			assert.Equal(t, w.protected, d.Protected, "Protected")
			assert.Equal(t, w.secret, d.Secret, "Secret")
			assert.Equal(t, w.accumulates, d.Accumulates, "Accumulates")
		})
	}
}

func TestNames(t *testing.T) {
	d, _ := Lookup("replica-read-only")
	assert.Equal(t, []string{"replica-read-only", "slave-read-only"}, d.Names())
	d, _ = Lookup("hz")
	assert.Equal(t, []string{"hz"}, d.Names())
}

func TestNameFor(t *testing.T) {
	d, _ := Lookup("primaryauth")
	redis7 := map[string]bool{"masterauth": true, "masteruser": true}
	valkey8 := map[string]bool{"primaryauth": true, "masterauth": true}
	tests := []struct {
		name   string
		server map[string]bool
		want   string
	}{
		{"valkey 8 prefers canonical", valkey8, "primaryauth"},
		{"redis 7 only knows the alias", redis7, "masterauth"},
		{"unknown server falls back to canonical", map[string]bool{}, "primaryauth"},
		{"nil map", nil, "primaryauth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, d.NameFor(tt.server))
		})
	}
	assert.True(t, d.IsKnownTo(redis7))
	assert.False(t, d.IsKnownTo(map[string]bool{"hz": true}))

	s, _ := Lookup("slowlog-log-slower-than")
	assert.Equal(t, "commandlog-execution-slower-than", s.NameFor(map[string]bool{"commandlog-execution-slower-than": true}))
}

func TestUnknown(t *testing.T) {
	d := Unknown("New-Directive")
	assert.Equal(t, "new-directive", d.Name)
	assert.Equal(t, String, d.Kind)
	assert.Empty(t, d.Aliases)
	assert.False(t, d.Immutable || d.Protected || d.Secret)
	v, err := d.Desired(true)
	require.NoError(t, err)
	assert.Equal(t, "yes", v.Canonical)
	v, err = d.Desired(float64(42))
	require.NoError(t, err)
	assert.Equal(t, "42", v.Canonical)
	v, err = d.FromServer(" abc ")
	require.NoError(t, err)
	assert.Equal(t, "abc", v.Canonical)
}

func TestUnsupported(t *testing.T) {
	for _, n := range []string{"include", "rename-command", "user", "loadmodule", "sentinel", "Rename-Command"} {
		reason, ok := Unsupported(n)
		assert.True(t, ok, n)
		assert.NotEmpty(t, reason, n)
	}
	reason, _ := Unsupported("rename-command")
	assert.Contains(t, reason, "use ACLs instead; see valkey_acl")
	reason, _ = Unsupported("user")
	assert.Contains(t, reason, "managed by valkey_acl")
	_, ok := Unsupported("maxmemory")
	assert.False(t, ok)
}

func TestKindString(t *testing.T) {
	assert.Equal(t, "memory", Memory.String())
	assert.Equal(t, "keyspace-events", KeyspaceEvents.String())
	assert.Equal(t, "unknown", Kind(99).String())
}
