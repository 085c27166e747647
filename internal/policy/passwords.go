package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// KnownBadPasswords are the well-known passwords (vendor defaults, sample
// configs, the first entries of every password list) that must never protect
// a Valkey user. The roles refuse them before a play changes anything
// (valkey_acl_known_bad_passwords, valkey_server_known_bad_passwords); the
// audit fails a user whose password hash is one of theirs.
// TestRolesShareTheKnownBadPasswords fails when a role's copy parts from this one.
var KnownBadPasswords = []string{
	"",
	"changeme",
	"change-me",
	"password",
	"passw0rd",
	"foobared",
	"valkey",
	"redis",
	"admin",
	"secret",
	"default",
	"123456",
	"0123456789abcdef",
}

// knownBadHashes are the SHA-256 hashes (as ACL LIST prints them) of each
// known password as listed, capitalised and in capitals: the roles compare
// lowercased, a hash can only be compared exactly.
var knownBadHashes = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range KnownBadPasswords {
		for _, v := range []string{p, strings.ToUpper(p), capitalise(p)} {
			sum := sha256.Sum256([]byte(v))
			m[hex.EncodeToString(sum[:])] = true
		}
	}
	return m
}()

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func hasKnownPassword(hashes []string) bool {
	for _, h := range hashes {
		if knownBadHashes[strings.ToLower(h)] {
			return true
		}
	}
	return false
}
