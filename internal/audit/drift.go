package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/directives"
	"github.com/valkeyops/secure/internal/policy"
	"github.com/valkeyops/secure/internal/topology"
)

// Desired is the desired state, in the shape valkey_config (settings) and
// valkey_acl (users) take. Keys of a user other than name, state and
// enabled are accepted and ignored (a password is never read).
type Desired struct {
	Settings map[string]any   `json:"settings" yaml:"settings" spec:"directives"`
	Users    []map[string]any `json:"users" yaml:"users" spec:"secret_keys=password|hash"`
}

// Drift is what differs from the desired state, and the directives whose
// running value differs from the file's.
type Drift struct {
	Settings map[string]SettingDrift `json:"settings"`
	Users    map[string]UserDrift    `json:"users"`
}

// Count is the number of drifted directives and users.
func (d Drift) Count() (settings, users int) { return len(d.Settings), len(d.Users) }

// SettingDrift is one directive. Desired is empty when the directive is not
// in the desired state (then it is runtime-vs-file drift). Secret values
// show as ********.
type SettingDrift struct {
	Desired string   `json:"desired,omitempty"`
	Runtime string   `json:"runtime"`
	File    string   `json:"file"`
	Differs []string `json:"differs"` // "runtime" and/or "file"
}

// UserDrift is one ACL user.
type UserDrift struct {
	Desired string   `json:"desired"` // present, enabled, disabled, absent, not listed
	Runtime string   `json:"runtime"` // enabled, disabled, absent, unknown
	File    string   `json:"file"`    // same, from the aclfile or config file
	Differs []string `json:"differs"`
}

// Placeholders for values that are not there.
const (
	NotSet  = "(not set)"
	Unknown = "(unknown)"
)

// ValidateDesired checks the desired state without touching anything. It
// returns the secret values found in it (for masking).
func ValidateDesired(d *Desired) (secrets []string, err error) {
	for key, v := range d.Settings {
		name := strings.ToLower(strings.TrimSpace(key))
		dir, ok := directives.Lookup(name)
		if !ok {
			if _, bad := directives.Unsupported(name); bad {
				return nil, fmt.Errorf("desired.settings: directive %q cannot be compared (it is not a CONFIG GET parameter)", key)
			}
			continue // maybe newer than the table: checked against the server
		}
		if dir.Secret {
			if s, ok := v.(string); ok && s != "" {
				secrets = append(secrets, s)
			}
		}
		if _, err := dir.Desired(v); err != nil {
			return secrets, fmt.Errorf("desired.settings: %v", err)
		}
	}
	for i, u := range d.Users {
		for k, v := range u {
			if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "hash") {
				collectStrings(v, &secrets)
			}
		}
		name, ok := u["name"].(string)
		if !ok || name == "" {
			return secrets, fmt.Errorf("desired.users[%d]: name is required (a string)", i)
		}
		if st, ok := u["state"]; ok {
			if s, _ := st.(string); s != "present" && s != "absent" {
				return secrets, fmt.Errorf("desired.users[%d] (%s): state must be present or absent", i, name)
			}
		}
		if en, ok := u["enabled"]; ok {
			if _, isBool := en.(bool); !isBool {
				return secrets, fmt.Errorf("desired.users[%d] (%s): enabled must be a boolean", i, name)
			}
		}
	}
	return secrets, nil
}

func collectStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		if x != "" {
			*out = append(*out, x)
		}
	case []any:
		for _, e := range x {
			collectStrings(e, out)
		}
	}
}

// ComputeDrift compares the desired state with the running server and the
// file, and reports every directive set in the file whose running value
// differs. desired may be nil.
func ComputeDrift(g *Gathered, desired *Desired) (Drift, error) {
	dr := Drift{Settings: map[string]SettingDrift{}, Users: map[string]UserDrift{}}
	f := g.Facts
	names := map[string]bool{}
	for k := range f.Runtime {
		names[k] = true
	}
	covered := map[string]bool{}
	if desired != nil {
		keys := make([]string, 0, len(desired.Settings))
		for k := range desired.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			name := strings.ToLower(strings.TrimSpace(key))
			d, ok := directives.Lookup(name)
			if !ok {
				if f.Runtime != nil && !names[name] {
					return dr, fmt.Errorf("desired.settings: unknown directive %q: not known to the server either; check the spelling", key)
				}
				d = directives.Unknown(name)
			}
			want, err := d.Desired(desired.Settings[key])
			if err != nil {
				return dr, fmt.Errorf("desired.settings: %v", err)
			}
			covered[d.Name] = true
			if topology.IsTopology(d.Name) {
				continue // the initial primary: after a failover the group's choice stands (CheckTopology)
			}
			sd := SettingDrift{Desired: shown(d, want.Canonical), Runtime: Unknown, File: Unknown}
			if rt, ok := runtimeValue(g, d, names); ok {
				sd.Runtime = shown(d, rt.Canonical)
				if rt.Canonical != want.Canonical {
					sd.Differs = append(sd.Differs, "runtime")
				}
			} else if f.Runtime != nil {
				sd.Runtime = "(not known to the server)"
				sd.Differs = append(sd.Differs, "runtime")
			}
			if f.Config != nil {
				fv, in, err := fileValue(f, d)
				switch {
				case err != nil:
					sd.File = "(unreadable: " + err.Error() + ")"
					sd.Differs = append(sd.Differs, "file")
				case !in:
					// Not in the file: the server default applies at the
					// next start. An empty desired value (no password, no
					// file) is what that default is; anything else is lost.
					sd.File = NotSet
					if want.Canonical != "" {
						sd.Differs = append(sd.Differs, "file")
					}
				default:
					sd.File = shown(d, fv.Canonical)
					if fv.Canonical != want.Canonical {
						sd.Differs = append(sd.Differs, "file")
					}
				}
			}
			if len(sd.Differs) > 0 {
				dr.Settings[d.Name] = sd
			}
		}
	}
	// Runtime vs file for every other directive the file sets.
	if f.Runtime != nil && f.Config != nil {
		seen := map[string]bool{}
		for _, o := range f.Config.Occurrences(allNames(f)...) {
			d, ok := directives.Lookup(o.Name)
			if !ok || covered[d.Name] || seen[d.Name] || topology.IsTopology(d.Name) {
				continue
			}
			seen[d.Name] = true
			rt, ok := runtimeValue(g, d, names)
			if !ok {
				continue
			}
			fv, in, err := fileValue(f, d)
			if err != nil || !in || fv.Canonical == rt.Canonical {
				continue
			}
			dr.Settings[d.Name] = SettingDrift{Runtime: shown(d, rt.Canonical), File: shown(d, fv.Canonical), Differs: []string{"runtime"}}
		}
	}
	userDrift(g, desired, &dr)
	return dr, nil
}

// allNames lists every directive name the file uses.
func allNames(f *policy.Facts) []string {
	var out []string
	for _, d := range directives.All() {
		out = append(out, d.Names()...)
	}
	return out
}

func runtimeValue(g *Gathered, d *directives.Directive, names map[string]bool) (directives.Value, bool) {
	f := g.Facts
	if f.Runtime == nil || !d.IsKnownTo(names) {
		return directives.Value{}, false
	}
	v, err := d.FromServer(f.Runtime[d.NameFor(names)])
	return v, err == nil
}

func fileValue(f *policy.Facts, d *directives.Directive) (directives.Value, bool, error) {
	args, last, ok := f.Config.Effective(d.Accumulates, d.Names()...)
	if !ok {
		return directives.Value{}, false, nil
	}
	v, err := d.FromFile(args)
	if err != nil {
		return v, true, fmt.Errorf("%s:%d", last.File, last.Line)
	}
	return v, true, nil
}

func shown(d *directives.Directive, v string) string {
	if d.Secret {
		if v == "" {
			return ""
		}
		return ansible.Mask
	}
	return v
}

func userState(users []policy.User, name string) string {
	if users == nil {
		return Unknown
	}
	for _, u := range users {
		if u.Name == name {
			if u.Enabled {
				return "enabled"
			}
			return "disabled"
		}
	}
	return "absent"
}

// matches says whether an actual user state meets the desired one.
func matches(desired, actual string) bool {
	switch desired {
	case "absent":
		return actual == "absent"
	case "present":
		return actual == "enabled" || actual == "disabled"
	default: // enabled, disabled
		return actual == desired
	}
}

func userDrift(g *Gathered, desired *Desired, dr *Drift) {
	if desired == nil || desired.Users == nil {
		return
	}
	listed := map[string]bool{}
	for _, u := range desired.Users {
		name, _ := u["name"].(string)
		listed[name] = true
		want := "present"
		if s, _ := u["state"].(string); s == "absent" {
			want = "absent"
		} else if en, ok := u["enabled"].(bool); ok {
			want = map[bool]string{true: "enabled", false: "disabled"}[en]
		}
		ud := UserDrift{Desired: want, Runtime: userState(g.RuntimeUsers, name), File: userState(g.FileUsers, name)}
		if ud.Runtime != Unknown && !matches(want, ud.Runtime) {
			ud.Differs = append(ud.Differs, "runtime")
		}
		if ud.File != Unknown && !matches(want, ud.File) {
			ud.Differs = append(ud.Differs, "file")
		}
		if len(ud.Differs) > 0 {
			dr.Users[name] = ud
		}
	}
	// Users nobody asked for: added by hand. The default user always
	// exists; it is drift only when it is listed.
	extra := map[string]*UserDrift{}
	for src, users := range map[string][]policy.User{"runtime": g.RuntimeUsers, "file": g.FileUsers} {
		for _, u := range users {
			if listed[u.Name] || u.Name == "default" {
				continue
			}
			ud := extra[u.Name]
			if ud == nil {
				ud = &UserDrift{Desired: "not listed", Runtime: userState(g.RuntimeUsers, u.Name), File: userState(g.FileUsers, u.Name)}
				extra[u.Name] = ud
			}
			ud.Differs = append(ud.Differs, src)
		}
	}
	for name, ud := range extra {
		sort.Strings(ud.Differs)
		dr.Users[name] = *ud
	}
}
