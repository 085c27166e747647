package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// billionLaughs is a policy whose aliases expand to 10^levels values.
func billionLaughs(levels int) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		p := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "  a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(p+", ", 10), ", "))
	}
	b.WriteString("rules: []\n")
	return b.String()
}

// TestBillionLaughs: nested aliases are refused before the decoder expands
// them (on 0.1.0 this ran out of memory or for ever).
func TestBillionLaughs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "laughs.yml")
	require.NoError(t, os.WriteFile(path, []byte(billionLaughs(9)), 0o600))
	_, err := Load(true, path)
	require.Error(t, err)
	assert.Equal(t, "invalid policy "+path+":7: YAML aliases expand to more than 100000 values; write the policy without nested aliases", err.Error())

	// A few aliases stay fine.
	_, err = Build(true, Source{Name: "small.yml", Data: []byte(billionLaughs(1))})
	assert.NoError(t, err)
}

// TestPolicyFileBounds: a device or FIFO is refused (no hang), a huge file
// is refused by size.
func TestPolicyFileBounds(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "policy.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err := Load(true, fifo)
	require.Error(t, err)
	assert.Equal(t, "failed to read policy "+fifo+": not a regular file (it is a FIFO)", err.Error())

	_, err = Load(true, "/dev/zero")
	require.Error(t, err)
	assert.Equal(t, "failed to read policy /dev/zero: not a regular file (it is a character device)", err.Error())

	big := filepath.Join(t.TempDir(), "big.yml")
	require.NoError(t, os.WriteFile(big, []byte("version: 1\n"+strings.Repeat("#", MaxPolicySize)), 0o600))
	_, err = Load(true, big)
	require.Error(t, err)
	assert.Equal(t, "failed to read policy "+big+": file too large (more than 4 MiB)", err.Error())
}
