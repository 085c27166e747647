package audit

import (
	"fmt"
	"strings"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
)

// ConfigCheckID is the id of the findings CheckConfig makes: lines the server
// cannot start with.
const ConfigCheckID = "VK-000"

const configCheckTitle = "The server cannot start with this configuration line"

// serverKeywords are config-file directives the server handles outside its
// config table (config.c, loadServerConfigFromString): they are valid lines
// (user lines are checked with the ACL model).
var serverKeywords = map[string]bool{"include": true, "rename-command": true, "loadmodule": true, "sentinel": true}

// deprecatedIgnored are names the server still accepts, with one argument,
// and ignores.
var deprecatedIgnored = map[string]bool{"list-max-ziplist-entries": true, "list-max-ziplist-value": true, "lua-replicate-commands": true}

// CheckConfig validates every directive line of cfg with the engine of
// valkey_config (internal/directives): an unknown name, a value the server
// refuses, and a name or value the release ver lacks (ver unknown: not
// checked) are each a critical finding naming the file and line. Secret
// values are never shown. serverNames, when not nil, are the names the
// running server lists (CONFIG GET *): a directive newer than the table is
// then known. A module's directives (name.with-dot) are left alone when the
// file loads a module.
func CheckConfig(cfg *conffile.Config, ver directives.Version, serverNames map[string]string) []policy.Finding {
	var out []policy.Finding
	add := func(o conffile.Occurrence, format string, a ...any) {
		out = append(out, policy.Finding{
			ID: ConfigCheckID, Title: configCheckTitle, Severity: "critical",
			Message:     fmt.Sprintf("%s:%d: ", o.File, o.Line) + fmt.Sprintf(format, a...),
			Remediation: "fix or remove the line; valkey-server refuses to start with it",
		})
	}
	var aclfile bool
	if args, _, ok := cfg.Effective(false, "aclfile"); ok && len(args) == 1 && args[0] != "" {
		aclfile = true
	}
	modules := len(cfg.Occurrences("loadmodule")) > 0
	for _, o := range cfg.All() {
		if serverKeywords[o.Name] || (deprecatedIgnored[o.Name] && len(o.Args) == 1) {
			continue
		}
		if o.Name == "user" {
			if name, _, err := aclrule.FromFileLine(o.Args); err != nil {
				add(o, "user %q: %v", name, err)
			} else if aclfile {
				add(o, "user %q: users are defined here and an aclfile is set; the server accepts one or the other", name)
			}
			continue
		}
		d, ok := directives.Lookup(o.Name)
		if !ok {
			if _, known := serverNames[o.Name]; known || (modules && strings.Contains(o.Name, ".")) {
				continue
			}
			add(o, "unknown directive %+q; check the spelling", o.Name)
			continue
		}
		v, err := d.FromFile(o.Args)
		if err != nil {
			add(o, "%v", err)
			continue
		}
		if err := d.CheckVersion(ver, o.Name, v); err != nil {
			add(o, "%v", err)
		}
	}
	return out
}
