package audit

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/policy"
)

// A report without findings says so with an empty list: the HTML report and
// any consumer of the JSON read "findings": [], never null.
func TestAddFindingsKeepsAList(t *testing.T) {
	r := &Report{Findings: []policy.Finding{}}
	r.AddFindings()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"findings":[]`)
}
