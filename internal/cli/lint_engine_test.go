package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

// hardened returns the clean test config with line appended.
func hardened(t *testing.T, line string) (path string, lineNo int) {
	t.Helper()
	base, err := os.ReadFile("testdata/hardened.conf")
	require.NoError(t, err)
	dir := t.TempDir()
	// The hardened file names its aclfile relative to itself; the server
	// resolves it against its working directory: make it absolute.
	acl, err := os.ReadFile("testdata/hardened.acl")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hardened.acl"), acl, 0o600))
	content := strings.ReplaceAll(string(base), "aclfile hardened.acl", "aclfile "+filepath.Join(dir, "hardened.acl"))
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	lineNo = strings.Count(content, "\n") + 1
	path = filepath.Join(dir, "valkey.conf")
	require.NoError(t, os.WriteFile(path, []byte(content+line+"\n"), 0o600))
	return path, lineNo
}

// TestLintUsesTheEngine: each line passed lint clean in 0.1.0 and stops a real
// valkey-server 8.0 from starting; now each is a critical finding naming the
// file and line, with the engine's words.
func TestLintUsesTheEngine(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"foo-bar-baz 1", `unknown directive "foo-bar-baz"; check the spelling`},
		{"appendfsync sometimes", `directive "appendfsync": "sometimes" is not a valid choice; expected one of everysec, always, no`},
		{"io-threads 129", `directive "io-threads": "129" is out of range; expected an integer between 1 and 128`},
		{"repl-diskless-load flush-before-load", `directive "repl-diskless-load": "flush-before-load" needs Valkey 9.0 or newer; the target server is Valkey 8.0.1; expected one of disabled, on-empty-db, swapdb`},
		{"T\u0130MEOUT 5", `unknown directive "t\u0130meout"; check the spelling`},
		{"requirepass \"a\" b", `directive "requirepass": 2 arguments on the line are not allowed; expected exactly one value`},
		{"user app on nopass +get|key1|key2", `user "app": rule "+get|key1|key2": a command rule names a command, a subcommand (+client|setname) or one first argument (+select|0), so it has at most one |`},
		{"user app on #abc ~x", `user "app": rule "#(secret)": not a SHA-256 hash: expected 64 hexadecimal characters`},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			path, n := hardened(t, tc.line)
			out, errOut, code := lint(path, "--valkey-version", "8.0.1")
			assert.Equal(t, ExitFindings, code, out+errOut)
			assert.Contains(t, out, "CRITICAL VK-000 The server cannot start with this configuration line")
			assert.Contains(t, out, "    "+path+":"+itoa(n)+": "+tc.want+"\n")
			assert.Contains(t, out, "1 finding (1 critical)")

			// The line alone stops the server (the hardened file needs TLS
			// files this host lacks).
			alone := filepath.Join(t.TempDir(), "alone.conf")
			require.NoError(t, os.WriteFile(alone, []byte(tc.line+"\n"), 0o600))
			srv, log := testserver.StartFile(t, alone)
			require.Nil(t, srv, "valkey-server started with %q", tc.line)
			assert.Regexp(t, `\*\*\* FATAL CONFIG FILE ERROR[^\n]*\n[^\n]*at line 1\b|Error in user declaration|Error loading ACL`, log)
		})
	}
	path, _ := hardened(t, "# nothing")
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitOK, code, out)

	// The hardened file sets an aclfile: a user line as well is refused.
	path, n := hardened(t, "user app on nopass ~app:* +get")
	out, _, _ = lint(path, "--valkey-version", "8.0.1")
	assert.Contains(t, out, path+":"+itoa(n)+`: user "app": users are defined here and an aclfile is set; the server accepts one or the other`)
	dir := t.TempDir()
	both := filepath.Join(dir, "both.conf")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.acl"), nil, 0o600))
	require.NoError(t, os.WriteFile(both, []byte("aclfile "+filepath.Join(dir, "users.acl")+"\nuser app on nopass ~app:* +get\n"), 0o600))
	srv, log := testserver.StartFile(t, both)
	require.Nil(t, srv, "valkey-server started with users and an aclfile")
	assert.Contains(t, log, "with users defined in valkey.conf and at the same setting an ACL file path is invalid")
}

// TestLintVersionGate: a directive of a newer release is fine for that
// release and a finding for an older one.
func TestLintVersionGate(t *testing.T) {
	path, n := hardened(t, "hide-user-data-from-log yes")
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitOK, code, out)
	out, _, code = lint(path, "--valkey-version", "7.2.7")
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, out, path+":"+itoa(n)+`: directive "hide-user-data-from-log": needs Valkey 8.0 or newer; the target server is Valkey 7.2.7`)
	_, errOut, code := lint(path, "--valkey-version", "eight")
	assert.Equal(t, ExitUsage, code)
	assert.Equal(t, "valkeyops lint: --valkey-version: \"eight\" is not a Valkey version; expected major.minor[.patch]\n", errOut)
}

// TestLintReadsNULLikeTheServer (issue 11 item 9): a NUL byte in a comment
// makes the server drop the rest of that line, its line break included, so
// the requirepass line below becomes part of the comment and the server runs
// with no password. 0.1.0's lint saw the password and passed.
func TestLintReadsNULLikeTheServer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "valkey.conf")
	require.NoError(t, os.WriteFile(path, []byte("# managed by ops\x00\nrequirepass Str0ng-Passw0rd-For-Lint\nprotected-mode yes\n"), 0o600))
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, out, "CRITICAL VK-003 The default user needs a password or is disabled")
	assert.Contains(t, out, "warning: "+path+":1 holds a NUL byte")
	assert.NotContains(t, out, "Str0ng-Passw0rd")

	srv, log := testserver.StartFile(t, path)
	require.NotNil(t, srv, log)
	assert.Equal(t, "", srv.ConfigGet("requirepass"), "the server runs without a password")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLintNoFalseFindingOnDefaults: Valkey 8 hides user data from the log by
// default; 0.1.0's baseline said no, and a file that left the default raised
// VK-022.
func TestLintNoFalseFindingOnDefaults(t *testing.T) {
	path, _ := hardened(t, "# hide-user-data-from-log left at its default")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), "hide-user-data-from-log yes\n", "", 1)), 0o600))
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitOK, code, out)
	assert.NotContains(t, out, "VK-022")
}

// TestLintACLRightsFromTheModel (issue 11 item 10): users that can run
// FLUSHALL and CONFIG SET or reach every key passed 0.1.0's audit when the
// right came from a selector, from commands re-added after -@dangerous, or
// from ~** and %R~*. The rights are decided by internal/aclrule now.
func TestLintACLRightsFromTheModel(t *testing.T) {
	path, _ := hardened(t, "# users in the aclfile")
	acl := filepath.Join(filepath.Dir(path), "hardened.acl")
	b, err := os.ReadFile(acl)
	require.NoError(t, err)
	const h = "#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
	extra := "user sel on " + h + " ~app:* resetchannels -@all +get (~* +get +flushall +config|set)\n" +
		"user readd on " + h + " ~app:* resetchannels +@all -@dangerous +flushall +config\n" +
		"user stars on " + h + " ~** resetchannels -@all +get\n" +
		"user reader on " + h + " %R~* resetchannels -@all +get\n"
	require.NoError(t, os.WriteFile(acl, append(b, extra...), 0o600))
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, out, `HIGH     VK-006 Only admins may run dangerous commands`)
	assert.Contains(t, out, `enabled ACL user "sel", "readd" have dangerous commands (+@dangerous) (from `+acl+`); "sel" may run config|set, flushall`+"\n")
	assert.Contains(t, out, `MEDIUM   VK-007 Only admins may access every key`)
	assert.Contains(t, out, `enabled ACL user "sel", "stars", "reader" have every key (~*)`)
	assert.NotContains(t, out, `"app"`)
}

// TestLintLeavesModuleDirectivesToTheirModule: a module's directives
// (name.with-dot) are unknown to the table; with a loadmodule line they are
// the module's to check, without one the server refuses them.
func TestLintLeavesModuleDirectivesToTheirModule(t *testing.T) {
	path, n := hardened(t, "bf.bloom-capacity 100")
	out, _, _ := lint(path, "--valkey-version", "8.0.1")
	assert.Contains(t, out, path+":"+itoa(n)+`: unknown directive "bf.bloom-capacity"; check the spelling`)
	alone := filepath.Join(t.TempDir(), "alone.conf")
	require.NoError(t, os.WriteFile(alone, []byte("bf.bloom-capacity 100\n"), 0o600))
	srv, log := testserver.StartFile(t, alone)
	require.Nil(t, srv, log)

	path, _ = hardened(t, "loadmodule /usr/lib/valkey/modules/bloom.so\nbf.bloom-capacity 100")
	out, _, code := lint(path, "--valkey-version", "8.0.1")
	assert.Equal(t, ExitOK, code, out)
}
