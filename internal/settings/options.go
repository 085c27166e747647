// Package settings is the engine that converges Valkey directives in the
// running server (CONFIG SET) and in valkey.conf together: compared by value,
// applied all-or-nothing, rolled back when the two cannot agree. valkey_config
// is a thin wrapper around it; valkey_tls and valkey_audit reuse it.
//
// It lives beside internal/directives rather than inside it on purpose:
// directives is pure (tables and normalisation, fuzzable, no I/O); this
// package talks to the server and writes files.
package settings

import (
	"fmt"

	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
)

// Persist values: where a change goes.
const (
	PersistRuntime = "runtime" // CONFIG SET only
	PersistFile    = "file"    // valkey.conf only
	PersistBoth    = "both"    // both, kept in agreement (default)
)

// DefaultPersist is the default of the persist option.
const DefaultPersist = PersistBoth

// NewFileMode is the mode of a config file the module creates.
const NewFileMode = 0o640

// Options are valkey_config's options, and what other modules fill in to
// converge their own directives.
type Options struct {
	conn.Options
	// JournalOptions are the change journal's options (journal,
	// journal_path, journal_required, journal_syslog): Converge records
	// every change it applies, and checks that the journal can be written
	// before applying.
	journal.JournalOptions

	// Settings maps a directive to its desired value (string, number, bool
	// or list). Required (may be empty: nothing to do).
	Settings map[string]any `json:"settings" spec:"required,directives"`
	// Persist is one of runtime, file, both (default DefaultPersist).
	Persist string `json:"persist" spec:"default=both,choices=runtime|file|both"`
	// ConfigFile is the valkey.conf to edit. Default: the path the server
	// reports in INFO server; required when the server cannot be reached
	// and Persist is file.
	ConfigFile string `json:"config_file" spec:"path"`
	// Backup keeps a timestamped copy of the file before changing it.
	Backup bool `json:"backup" spec:"default=false"`
	// Strict fails, instead of warning, when a directive needs a restart.
	Strict bool `json:"strict" spec:"default=false"`
}

// Validate checks the options and applies defaults; it touches nothing.
func (o *Options) Validate() error {
	switch o.Persist {
	case "":
		o.Persist = DefaultPersist
	case PersistRuntime, PersistFile, PersistBoth:
	default:
		return fmt.Errorf("option \"persist\": %q is not one of runtime, file, both", o.Persist)
	}
	if o.Settings == nil {
		return fmt.Errorf("option \"settings\" is required: a dictionary of directive: value")
	}
	if err := o.JournalOptions.Validate(); err != nil {
		return err
	}
	return o.Options.Validate()
}

func (o *Options) runtime() bool { return o.Persist != PersistFile }
func (o *Options) file() bool    { return o.Persist != PersistRuntime }
