package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/testserver"
)

const hashP1 = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a" // sha256("p1")

// rightsCases are ACL rules and what a user with them may do. The first four
// passed 0.1.0's audit (issue 11 item 10): rights from a selector, dangerous
// commands re-added after -@dangerous, ~** and %R~*. TestRightsAgainstServer
// asks the server (ACL DRYRUN) the same questions.
var rightsCases = []struct {
	name        string
	rules       string
	allKeys     bool
	allCommands bool
	flushall    bool // may run FLUSHALL
	configSet   bool // may run CONFIG SET
}{
	{"rights from a selector", "on #" + hashP1 + " resetchannels ~app:* -@all +get (~* +get +flushall +config|set)", true, false, true, true},
	{"re-added after -@dangerous", "on #" + hashP1 + " ~app:* resetchannels +@all -@dangerous +flushall +config", false, false, true, true},
	{"~** is every key", "on #" + hashP1 + " ~** resetchannels -@all +get", true, false, false, false},
	{"%R~* is every key", "on #" + hashP1 + " %R~* resetchannels -@all +get", true, false, false, false},
	{"every command in a selector", "on #" + hashP1 + " ~app:* resetchannels -@all +get (~app:* +@all)", false, true, true, true},
	{"application user", "on #" + hashP1 + " ~app:* resetchannels -@all +@read +@write -@dangerous", false, false, false, false},
	{"admin", "on #" + hashP1 + " ~* &* +@all", true, true, true, true},
	{"dangerous taken back one by one", "on #" + hashP1 + " ~app:* resetchannels +@all -flushall -config", false, false, false, false},
}

func TestRightsFromTheModel(t *testing.T) {
	for _, tc := range rightsCases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := UserFromACLList("user u " + tc.rules)
			require.NoError(t, err)
			assert.Equal(t, tc.allKeys, u.AllKeys, "all keys")
			assert.Equal(t, tc.allCommands, u.AllCommands, "all commands")
			assert.Equal(t, tc.flushall, contains(u.Dangerous, "flushall"), "flushall in %v", u.Dangerous)
			assert.Equal(t, tc.configSet, contains(u.Dangerous, "config|set"), "config|set in %v", u.Dangerous)
			// The same user from an aclfile line and a config file line.
			users, warnings := UsersFromACLFile("users.acl", []byte("user u "+tc.rules+"\n"))
			require.Empty(t, warnings)
			require.Len(t, users, 1)
			assert.Equal(t, u, users[0])
		})
	}
	// What is not in 0.1.0's examples: the last one is "dangerous" through
	// commands other than FLUSHALL and CONFIG (SHUTDOWN, DEBUG, KEYS...).
	u, err := UserFromACLList("user u " + rightsCases[len(rightsCases)-1].rules)
	require.NoError(t, err)
	assert.Contains(t, u.Dangerous, "shutdown")
	assert.NotContains(t, u.Dangerous, "config|set")
}

// TestRightsAgainstServer checks the model's answers with ACL DRYRUN on a
// real server.
func TestRightsAgainstServer(t *testing.T) {
	srv := testserver.Start(t)
	dry := func(args ...string) bool {
		out := srv.CLI(append([]string{"ACL", "DRYRUN", "u"}, args...)...)
		return out == "OK"
	}
	for _, tc := range rightsCases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, "OK", srv.CLI(append([]string{"ACL", "SETUSER", "u", "reset"}, splitRules(tc.rules)...)...))
			assert.Equal(t, tc.flushall, dry("flushall"), "flushall")
			assert.Equal(t, tc.configSet, dry("config", "set", "maxmemory", "0"), "config set")
			assert.Equal(t, tc.allKeys, dry("get", "other:key"), "get other:key")
		})
	}
}

// splitRules splits rules for ACL SETUSER, keeping (…) selectors whole.
func splitRules(s string) []string {
	var out []string
	for _, w := range strings.Fields(s) {
		if n := len(out); n > 0 && strings.HasPrefix(out[n-1], "(") && !strings.HasSuffix(out[n-1], ")") {
			out[n-1] += " " + w
			continue
		}
		out = append(out, w)
	}
	return out
}

// A line the model cannot read fails closed: every right, and the error.
func TestUnreadableACLListLineFailsClosed(t *testing.T) {
	u, err := UserFromACLList("user future on nopass ~* resetchannels -@all +get someday-flag")
	require.Error(t, err)
	assert.Equal(t, User{Name: "future", Enabled: true, AllKeys: true, AllCommands: true, Dangerous: []string{"(unreadable rules)"}}, u)
}
