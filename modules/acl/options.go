// Package acl is the valkey_acl module: Valkey ACL users as code, compared
// by meaning, converged with one atomic ACL SETUSER per changed user, all
// writes in one pipelined round trip, persisted with ACL SAVE or CONFIG
// REWRITE, restored when persisting fails.
package acl

import (
	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
)

// State values of a user.
const (
	StatePresent = "present" // default
	StateAbsent  = "absent"
)

// update_password values.
const (
	UpdateAlways   = "always" // default: the passwords are exactly the ones given
	UpdateOnCreate = "on_create"
)

// Persist values: where changes are saved.
const (
	PersistAuto    = "auto"    // default: aclfile if configured, else config file, else warn
	PersistACLFile = "aclfile" // ACL SAVE
	PersistConfig  = "config"  // CONFIG REWRITE (user lines in the config file)
	PersistNone    = "none"    // memory only
)

// DefaultPersist is the default of the persist option.
const DefaultPersist = PersistAuto

// SelectorSpec is one (…) selector of a user.
type SelectorSpec struct {
	Keys     []string `json:"keys"`
	Channels []string `json:"channels"`
	Commands []string `json:"commands"`
}

// UserSpec is one user of the task (an item of users, or the top level).
type UserSpec struct {
	// Name of the user; required.
	Name string `json:"name"`
	// State is present (default) or absent; absent takes no other field.
	State string `json:"state" spec:"default=present,choices=present|absent"`
	// Enabled (default true) is the on/off flag.
	Enabled *bool `json:"enabled" spec:"default=true"`
	// Passwords in plain text (no_log); hashed here, only hashes reach the server.
	Passwords []ansible.Secret `json:"passwords"`
	// PasswordHashes are SHA-256 hex digests (no_log).
	PasswordHashes []ansible.Secret `json:"password_hashes"`
	// NoPass lets anyone log in as the user; conflicts with passwords.
	NoPass bool `json:"nopass" spec:"default=false"`
	// Keys, Channels, Commands: the root selector (default: none of each).
	Keys     []string `json:"keys"`
	Channels []string `json:"channels"`
	Commands []string `json:"commands"`
	// Selectors are additional (…) selectors.
	Selectors []SelectorSpec `json:"selectors"`
	// UpdatePassword is always (default) or on_create.
	UpdatePassword string `json:"update_password" spec:"default=always,choices=always|on_create"`
}

// Options of valkey_acl.
type Options struct {
	conn.Options
	// JournalOptions are the change journal's options (journal,
	// journal_path, journal_required, journal_syslog).
	journal.JournalOptions
	// UserSpec at top level: one user (name required), for loops.
	UserSpec
	// Users is the list of users; exclusive with a top-level name.
	Users []UserSpec `json:"users" spec:"item_required=name"`
	// Exclusive deletes every user that is not listed, except default.
	Exclusive bool `json:"exclusive" spec:"default=false"`
	// AllowLockout lets the task leave no enabled user able to manage ACLs.
	AllowLockout bool `json:"allow_lockout" spec:"default=false"`
	// Persist is one of auto (default), aclfile, config, none.
	Persist string `json:"persist" spec:"default=auto,choices=auto|aclfile|config|none"`
}
