package report

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/audit"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/testserver"
)

const (
	compareKey    = "run-key-0f3c9e5a7b1d"
	changedSecret = "changed-primaryauth-Pw-6d2b"
)

// auditNode audits a real server as valkey_audit does, with the run's key.
func auditNode(t *testing.T, s *testserver.Server, host string) Instance {
	t.Helper()
	c, err := conn.Open(&conn.Options{LoginPort: s.Port})
	require.NoError(t, err)
	defer c.Close()
	g, err := audit.Gather(context.Background(), audit.Source{Client: c, FS: audit.LocalFS{}, LocalServer: true})
	require.NoError(t, err)
	pol, err := policy.Build(false)
	require.NoError(t, err)
	rep := audit.BuildReport(pol, g, audit.Drift{})
	rep.Fleet = audit.FleetOf(g, compareKey)
	require.NotNil(t, rep.Fleet, "a node of a replication group has a group")
	// As the report module reads it: through the module's JSON.
	data, err := json.Marshal(rep)
	require.NoError(t, err)
	in, err := FromResult(Result{Host: host, Instance: "default", Result: data})
	require.NoError(t, err)
	return in
}

// A real replication group in which one replica was changed by hand: the
// report names that node, the directive, the user and the secret that
// differs, passes the others, and shows no secret or digest in the page.
func TestCrossNodeNamesTheNodeThatDiffers(t *testing.T) {
	g := testserver.StartGroup(t, 2, 0)
	g.Primary.WriteAndWait(2)
	odd := g.Replicas[1]
	odd.CLI("CONFIG", "SET", "maxmemory", "123mb")
	odd.CLI("CONFIG", "SET", "primaryauth", changedSecret)
	odd.CLI("ACL", "SETUSER", "app", "on", ">app-Pw-1b9e", "~app:*", "+get")
	ins := []Instance{auditNode(t, g.Primary, "lab17"), auditNode(t, g.Replicas[0], "lab18"), auditNode(t, odd, "lab19")}
	run := New("t", "test", now, Baseline(), ins)

	require.Len(t, run.Groups, 1)
	grp := run.Groups[0]
	assert.Equal(t, []string{"lab17/default", "lab18/default", "lab19/default"}, grp.Members)
	var names []string
	for _, d := range grp.Differences {
		names = append(names, d.Kind+" "+d.Name)
		assert.Equal(t, []string{"lab19/default"}, d.Odd, d.Name)
	}
	assert.Equal(t, []string{"directive maxmemory", "directive primaryauth", "user app"}, names)

	var msg string
	for _, f := range run.Instances[2].Report.Findings {
		if f.ID == CrossNodeID {
			msg = f.Message
		}
	}
	assert.Equal(t, "differs from the other nodes of "+grp.Group+" (lab17/default, lab18/default): "+
		`maxmemory is "128974848" here, "0" elsewhere; primaryauth differs; user app is only here`, msg)
	for _, i := range []int{0, 1} {
		assert.Contains(t, run.Instances[i].Report.PassedRules, CrossNodeID)
		assert.Equal(t, CellPass, run.Cell(&run.Instances[i], run.rule(CrossNodeID)).Status)
	}
	assert.Equal(t, CellFail, run.Cell(&run.Instances[2], run.rule(CrossNodeID)).Status)
	assert.Equal(t, StatusFindings, run.Instances[2].Status)

	var page, js bytes.Buffer
	require.NoError(t, WriteHTML(&page, run))
	require.NoError(t, WriteJSON(&js, run))
	html := page.String()
	for _, want := range []string{`data-difference="directive primaryauth" data-odd="lab19/default"`,
		"lab17/default: (empty)<br>lab18/default: (empty)<br>lab19/default: value 1<br>", `data-role="replica"`} {
		assert.True(t, strings.Contains(html, want), "the page lacks %s", want)
	}
	digest := run.Instances[2].Report.Fleet.Settings["primaryauth"]
	require.Contains(t, digest, audit.DigestPrefix)
	for _, out := range []string{html, js.String()} {
		assert.False(t, strings.Contains(out, changedSecret) || strings.Contains(out, "app-Pw-1b9e"), "a secret is in the report")
	}
	assert.False(t, strings.Contains(html, digest[len(audit.DigestPrefix):]), "a digest is on the page")
	// The replicas' ports are per node by nature: never a difference.
	assert.NotContains(t, names, "directive port")
	assert.NotContains(t, msg, strconv.Itoa(odd.Port))
}

// Without the run's key an audit carries nothing to compare (a digest
// without a key could be tested against guessed passwords).
func TestNoCompareKeyNoFleet(t *testing.T) {
	g := testserver.StartGroup(t, 1, 0)
	g.Primary.WriteAndWait(1)
	c, err := conn.Open(&conn.Options{LoginPort: g.Primary.Port})
	require.NoError(t, err)
	defer c.Close()
	gathered, err := audit.Gather(context.Background(), audit.Source{Client: c})
	require.NoError(t, err)
	assert.Nil(t, audit.FleetOf(gathered, ""))
	assert.NotNil(t, audit.FleetOf(gathered, compareKey))
}
