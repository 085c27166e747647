// Package config is the valkey_config module: directives in the running
// server and in valkey.conf together. The engine is internal/settings; this
// package decodes and validates the task and hands it over.
package config

import (
	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/settings"
)

// Fields are valkey_config's return values.
type Fields = settings.Fields

// DriftEntry is one directive whose runtime and file values disagreed.
type DriftEntry = settings.DriftEntry

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	var opts settings.Options
	if err := req.Decode(&opts); err != nil {
		return outcome.Fail(err)
	}
	if err := opts.Validate(); err != nil {
		return outcome.Fail(err)
	}
	return settings.Converge(req, opts)
}
