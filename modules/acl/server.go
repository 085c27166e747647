package acl

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/aclrule"
	"github.com/valkeyops/secure/internal/conn"
)

// Commands whose categories the module needs: to tell whether a user can
// manage ACLs (the lockout guard) and can finish the run (persist, restore).
var watchedCommands = []string{"acl|setuser", "acl|deluser", "acl|list", "acl|save", "config|rewrite", "sentinel|flushconfig"}

// serverState is everything read from the server at the start, in one
// pipelined round trip.
type serverState struct {
	whoami     string
	order      []string // user names in ACL LIST order
	users      map[string]*aclrule.User
	catalog    *aclrule.Catalog
	cats       map[string][]string // categories of watchedCommands
	aclfile    string              // absolute path, "" when none
	configFile string              // "" when the server runs without one
	sentinel   bool                // a Sentinel: users persisted by SENTINEL FLUSHCONFIG
}

// readState sends ACL WHOAMI, ACL LIST, ACL CAT, COMMAND LIST, COMMAND INFO
// acl config, CONFIG GET aclfile dir and INFO server in one round trip.
func readState(ctx context.Context, c valkey.Client) (*serverState, error) {
	r := c.DoMulti(ctx,
		c.B().AclWhoami().Build(),
		c.B().AclList().Build(),
		c.B().AclCat().Build(),
		c.B().CommandList().Build(),
		c.B().CommandInfo().CommandName("acl", "config", "sentinel").Build(),
		c.B().ConfigGet().Parameter("aclfile", "dir").Build(),
		c.B().Info().Section("server").Build(),
	)
	names := []string{"ACL WHOAMI", "ACL LIST", "ACL CAT", "COMMAND LIST", "COMMAND INFO", "CONFIG GET", "INFO server"}
	sentinel := isSentinel(r[6])
	for i := range r {
		if i == 5 && sentinel {
			continue // a Sentinel has no CONFIG command and no aclfile
		}
		if err := r[i].Error(); err != nil {
			return nil, fmt.Errorf("failed to read the server's ACL state (%s): %v", names[i], err)
		}
	}
	s := &serverState{users: map[string]*aclrule.User{}, cats: map[string][]string{}, sentinel: sentinel}
	s.whoami, _ = r[0].ToString()
	lines, err := r[1].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("failed to read ACL LIST: %v", err)
	}
	for _, line := range lines {
		name, u, err := aclrule.ParseListLine(line)
		if err != nil {
			return nil, err
		}
		s.order = append(s.order, name)
		s.users[name] = u
	}
	categories, err := r[2].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("failed to read ACL CAT: %v", err)
	}
	commands, err := r[3].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("failed to read COMMAND LIST: %v", err)
	}
	s.catalog = aclrule.NewCatalog(commands, categories)
	if err := s.readCategories(r[4]); err != nil {
		return nil, err
	}
	if s.aclfile, s.configFile, err = parsePaths(r[5], r[6]); err != nil {
		return nil, err
	}
	return s, nil
}

// readPaths reads where the server saves its users (CONFIG GET aclfile dir,
// INFO server), to take that file's lock before the users are read.
func readPaths(ctx context.Context, c valkey.Client) (aclfile, configFile string, sentinel bool, err error) {
	r := c.DoMulti(ctx,
		c.B().ConfigGet().Parameter("aclfile", "dir").Build(),
		c.B().Info().Section("server").Build(),
	)
	sentinel = isSentinel(r[1])
	for i, what := range []string{"CONFIG GET", "INFO server"} {
		if i == 0 && sentinel {
			continue
		}
		if err := r[i].Error(); err != nil {
			return "", "", false, fmt.Errorf("failed to read the server's ACL state (%s): %v", what, err)
		}
	}
	aclfile, configFile, err = parsePaths(r[0], r[1])
	return aclfile, configFile, sentinel, err
}

// isSentinel reports whether an INFO server reply is a Sentinel's. A
// Sentinel keeps its users in its own config file, which it rewrites
// itself (SENTINEL FLUSHCONFIG); it has no CONFIG command and no aclfile.
func isSentinel(infoReply valkey.ValkeyResult) bool {
	info, _ := infoReply.ToString()
	f := conn.ParseInfo(info)
	return f["server_mode"] == "sentinel" || f["redis_mode"] == "sentinel"
}

// parsePaths reads the aclfile (absolute) and the config file from the
// replies to CONFIG GET aclfile dir and INFO server.
func parsePaths(cfgReply, infoReply valkey.ValkeyResult) (aclfile, configFile string, err error) {
	cfg, err := cfgReply.AsStrMap()
	if err != nil && isSentinel(infoReply) {
		cfg, err = map[string]string{}, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("failed to read CONFIG GET aclfile: %v", err)
	}
	if f := cfg["aclfile"]; f != "" {
		if !filepath.IsAbs(f) && cfg["dir"] != "" {
			f = filepath.Join(cfg["dir"], f)
		}
		aclfile = f
	}
	info, _ := infoReply.ToString()
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "config_file:"); ok {
			configFile = v
		}
	}
	return aclfile, configFile, nil
}

// readCategories finds the ACL categories of the watched subcommands in a
// COMMAND INFO reply (entry: name, arity, flags, first, last, step,
// categories, tips, key specs, subcommands).
func (s *serverState) readCategories(msg valkey.ValkeyResult) error {
	entries, err := msg.ToArray()
	if err != nil {
		return fmt.Errorf("failed to read COMMAND INFO: %v", err)
	}
	var walk func([]valkey.ValkeyMessage)
	walk = func(list []valkey.ValkeyMessage) {
		for _, e := range list {
			fields, err := e.ToArray()
			if err != nil || len(fields) < 7 {
				continue
			}
			name, _ := fields[0].ToString()
			cats, _ := fields[6].AsStrSlice()
			for i := range cats {
				cats[i] = strings.TrimPrefix(cats[i], "@")
			}
			s.cats[strings.ToLower(name)] = cats
			if len(fields) >= 10 {
				if subs, err := fields[9].ToArray(); err == nil {
					walk(subs)
				}
			}
		}
	}
	walk(entries)
	for _, c := range watchedCommands {
		// A Sentinel has no CONFIG, a data node no SENTINEL FLUSHCONFIG.
		if (c == "config|rewrite" && s.sentinel) || (c == "sentinel|flushconfig" && !s.sentinel) {
			continue
		}
		if _, ok := s.cats[c]; !ok {
			return fmt.Errorf("failed to read COMMAND INFO: the server does not describe %s", c)
		}
	}
	return nil
}

// may reports whether u may run every one of cmds.
func (s *serverState) may(u *aclrule.User, cmds ...string) bool {
	for _, c := range cmds {
		if !u.Allows(c, s.cats[c]) {
			return false
		}
	}
	return true
}

func setUserCmd(c valkey.Client, name string, u *aclrule.User) valkey.Completed {
	return c.B().AclSetuser().Username(name).Rule(append([]string{"reset"}, u.Rules()...)...).Build()
}

func delUserCmd(c valkey.Client, name string) valkey.Completed {
	return c.B().AclDeluser().Username(name).Build()
}
