// Package topology reads what a server says about its place in a
// replication group, a Sentinel deployment or a cluster: strict, bounded
// parsers for INFO (server, replication, persistence), ROLE, Sentinel's
// SENTINEL PRIMARIES/REPLICAS/SENTINELS replies and CLUSTER INFO, and the
// list of directives that are per node by nature (pernode.go).
//
// Every byte parsed here comes from a server that may be hostile (anything
// answering on the port, a Sentinel that gossips what other Sentinels told
// it): sizes and counts are bounded, and a malformed line is refused with
// one sentence that names the reply and the line, never guessed around.
// Replies are quoted with %q and cut, so a reply cannot forge lines in a
// message.
package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Bounds of what a reply may hold. A real INFO section is a few KiB; a
// primary with MaxReplicas replicas stays far under MaxReplyBytes.
const (
	MaxReplyBytes = 1 << 20 // one INFO section or CLUSTER INFO reply
	MaxLines      = 1 << 14 // lines of one reply
	MaxValueLen   = 4096    // one value (a path, a host name)
	MaxKeyLen     = 128     // one field name
	MaxReplicas   = 1024    // replicas of one primary
	MaxMonitors   = 1024    // primaries one Sentinel monitors
	MaxHostLen    = 255     // a host name or address
)

// Fields is one INFO section or CLUSTER INFO reply: field -> value.
type Fields map[string]string

// ParseFields reads a key:value reply (INFO, CLUSTER INFO) strictly: every
// line is a "# Section" header, empty, or key:value with a printable key
// and a value without control characters; a key given twice is refused.
// what names the reply in errors ("INFO replication").
func ParseFields(what, text string) (Fields, error) {
	if len(text) > MaxReplyBytes {
		return nil, fmt.Errorf("the server's %s reply is %d bytes, more than the limit of %d; refusing it", what, len(text), MaxReplyBytes)
	}
	lines := strings.Split(text, "\n")
	if len(lines) > MaxLines {
		return nil, fmt.Errorf("the server's %s reply has %d lines, more than the limit of %d; refusing it", what, len(lines), MaxLines)
	}
	out := Fields{}
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			if err := printable(line); err != nil {
				return nil, fmt.Errorf("the server's %s reply has a malformed line %d (%v): %s", what, i+1, err, quote(line))
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("the server's %s reply has a line %d without \"key:value\": %s", what, i+1, quote(line))
		case k == "" || len(k) > MaxKeyLen || strings.ContainsAny(k, " \t"):
			return nil, fmt.Errorf("the server's %s reply has a malformed field name on line %d: %s", what, i+1, quote(line))
		case len(v) > MaxValueLen:
			return nil, fmt.Errorf("the server's %s reply has a value of %d bytes on line %d, more than the limit of %d", what, len(v), i+1, MaxValueLen)
		}
		if err := printable(line); err != nil {
			return nil, fmt.Errorf("the server's %s reply has a malformed line %d (%v): %s", what, i+1, err, quote(line))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("the server's %s reply gives the field %q twice (line %d)", what, k, i+1)
		}
		out[k] = v
	}
	return out, nil
}

func printable(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("control character 0x%02x", c)
		}
	}
	return nil
}

// quote shows a reply fragment in a message: quoted, and cut at 40 bytes (at most 4 characters each once escaped).
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// fieldError is the error of one field with a bad or missing value.
func fieldError(what, key, val, expected string) error {
	return fmt.Errorf("the server's %s reply has %s:%s; expected %s", what, key, quote(val), expected)
}

// str returns a required field, checked by ok.
func (f Fields) str(what, key, expected string, ok func(string) bool) (string, error) {
	v, present := f[key]
	if !present {
		return "", fmt.Errorf("the server's %s reply lacks the field %q", what, key)
	}
	if !ok(v) {
		return "", fieldError(what, key, v, expected)
	}
	return v, nil
}

// int returns a required integer field within [lo, hi].
func (f Fields) int(what, key string, lo, hi int64) (int64, error) {
	v, present := f[key]
	if !present {
		return 0, fmt.Errorf("the server's %s reply lacks the field %q", what, key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fieldError(what, key, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
	}
	return n, nil
}

// flag returns a required 0/1 field.
func (f Fields) flag(what, key string) (bool, error) {
	n, err := f.int(what, key, 0, 1)
	return n == 1, err
}

func oneOf(choices ...string) func(string) bool {
	return func(s string) bool {
		for _, c := range choices {
			if s == c {
				return true
			}
		}
		return false
	}
}

// isHost accepts an IP address or a host name as a server reports it: no
// space, comma, '=' or control character, bounded.
func isHost(s string) bool {
	if s == "" || len(s) > MaxHostLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || c == ',' || c == '=' || c == '"' || c == '\'' {
			return false
		}
	}
	return true
}

func isHex40(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}

func isVersion(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 9999 {
			return false
		}
	}
	return true
}

const maxPort = 65535

// Modes of a server (INFO server's server_mode / redis_mode).
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// Roles, by their modern names (the server says master/slave).
const (
	RolePrimary  = "primary"
	RoleReplica  = "replica"
	RoleSentinel = "sentinel"
)

// Server is what INFO server says about the process.
type Server struct {
	// Name is "valkey" (or "redis" for a server that is not Valkey).
	Name    string `json:"name"`
	Version string `json:"version"`
	RunID   string `json:"run_id"`
	Mode    string `json:"mode"`
	// ConfigFile is the path the server was started with ("" when none).
	ConfigFile string `json:"config_file"`
}

// ParseServer reads INFO server.
func ParseServer(text string) (*Server, error) {
	const what = "INFO server"
	f, err := ParseFields(what, text)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "valkey", ConfigFile: f["config_file"]}
	verKey, modeKey := "valkey_version", "server_mode"
	if _, ok := f[verKey]; !ok {
		s.Name, verKey = "redis", "redis_version"
	}
	if _, ok := f[modeKey]; !ok {
		modeKey = "redis_mode"
	}
	if s.Version, err = f.str(what, verKey, "a version like 8.0.1", isVersion); err != nil {
		return nil, err
	}
	if s.RunID, err = f.str(what, "run_id", "40 hexadecimal digits", isHex40); err != nil {
		return nil, err
	}
	if s.Mode, err = f.str(what, modeKey, "standalone, sentinel or cluster", oneOf(ModeStandalone, ModeSentinel, ModeCluster)); err != nil {
		return nil, err
	}
	return s, nil
}

// Persistence is what INFO persistence says about loading and saving.
type Persistence struct {
	Loading          bool   `json:"loading"`
	BgsaveInProgress bool   `json:"bgsave_in_progress"`
	LastBgsaveStatus string `json:"last_bgsave_status"` // ok or err
}

// ParsePersistence reads INFO persistence.
func ParsePersistence(text string) (*Persistence, error) {
	const what = "INFO persistence"
	f, err := ParseFields(what, text)
	if err != nil {
		return nil, err
	}
	p := &Persistence{}
	if p.Loading, err = f.flag(what, "loading"); err != nil {
		return nil, err
	}
	if p.BgsaveInProgress, err = f.flag(what, "rdb_bgsave_in_progress"); err != nil {
		return nil, err
	}
	if p.LastBgsaveStatus, err = f.str(what, "rdb_last_bgsave_status", "ok or err", oneOf("ok", "err")); err != nil {
		return nil, err
	}
	return p, nil
}
