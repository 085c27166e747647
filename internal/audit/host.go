package audit

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/policy"
)

// dirLister is a HostFS that can list a directory (the local disk; the
// drift scanner's SFTP does not, and the AOF rule is then skipped).
type dirLister interface {
	ReadDir(path string) ([]string, error)
}

// MaxAOFFiles bounds how many files of the AOF directory are inspected.
const MaxAOFFiles = 1000

// ReadDir lists a local directory's names (at most MaxAOFFiles).
func (LocalFS) ReadDir(path string) ([]string, error) {
	d, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(MaxAOFFiles)
	if len(names) > 0 {
		err = nil
	}
	sort.Strings(names)
	return names, err
}

// dataAndModulePaths lists the files of the file predicate's special paths:
// each module the config file loads, the RDB file, the AOF directory's files.
func (g *Gathered) dataAndModulePaths(fsys HostFS) map[string][]string {
	out := map[string][]string{}
	f := g.Facts
	if f.Config != nil {
		for _, o := range f.Config.Occurrences("loadmodule") {
			if len(o.Args) > 0 && o.Args[0] != "" {
				out["loadmodule"] = append(out["loadmodule"], g.abs(o.Args[0]))
			}
		}
	}
	dir := g.value("dir")
	if dir == "" {
		return out
	}
	if name := g.value("dbfilename"); name != "" {
		rdb := filepath.Join(dir, filepath.Base(name))
		if fsys.Stat(rdb).Exists {
			out["data"] = append(out["data"], rdb)
		}
	}
	if name := g.value("appenddirname"); name != "" {
		aof := filepath.Join(dir, filepath.Base(name))
		if l, ok := fsys.(dirLister); ok {
			names, err := l.ReadDir(aof)
			if err == nil {
				for _, n := range names {
					out["data"] = append(out["data"], filepath.Join(aof, n))
				}
			}
		}
	}
	return out
}

// abs makes a path from the config file absolute (the server resolves it
// from its working directory, which is where it was started: the config
// file's directory is the best guess a reader has).
func (g *Gathered) abs(p string) string {
	if filepath.IsAbs(p) || g.Facts.Config == nil {
		return p
	}
	return filepath.Join(filepath.Dir(g.Facts.Config.Path), p)
}

// Where the kernel settings the baseline checks are read from.
var kernelFiles = map[string]string{
	"vm.overcommit_memory": "/proc/sys/vm/overcommit_memory",
	"net.core.somaxconn":   "/proc/sys/net/core/somaxconn",
	"transparent_hugepage": "/sys/kernel/mm/transparent_hugepage/enabled",
}

var thpMode = regexp.MustCompile(`\[(always|madvise|never)\]`)

// readKernel reads the host's kernel settings (bounded reads of /proc/sys
// and /sys). What cannot be read is said, never guessed.
func readKernel(fsys HostFS) *policy.KernelInfo {
	k := &policy.KernelInfo{Values: map[string]string{}, Errors: map[string]string{}}
	for name, path := range kernelFiles {
		data, err := fsys.ReadFile(path)
		if err != nil {
			k.Errors[name] = path + ": " + describePathErr(err)
			continue
		}
		v := strings.TrimSpace(string(data))
		if name == "transparent_hugepage" {
			m := thpMode.FindStringSubmatch(v)
			if m == nil {
				k.Errors[name] = path + ": no selected mode in " + quoteShort(v)
				continue
			}
			v = m[1]
		} else if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r < '0' || r > '9' }) {
			k.Errors[name] = path + ": not a number: " + quoteShort(v)
			continue
		}
		k.Values[name] = v
	}
	return k
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// SandboxDropIn is the hardening drop-in roles/valkey_server installs in
// each instance's unit directory.
const SandboxDropIn = "valkeyops-hardening.conf"

// readSandbox finds the instance's unit (valkey-server, or valkey-server@NAME
// for the instance of valkey-NAME.conf, as the role names them) and its
// hardening drop-in: a regular file owned by root that no one else can write
// (anyone who can write it chooses what the service runs as root).
func readSandbox(fsys HostFS, configFile string) *policy.SandboxInfo {
	s := &policy.SandboxInfo{}
	if st := fsys.Stat("/run/systemd/system"); !st.Exists || !st.IsDir {
		return s
	}
	s.Systemd = true
	s.Unit = "valkey-server.service"
	if name := journal.InstanceName(configFile); name != "default" && name != "" {
		s.Unit = "valkey-server@" + name + ".service"
	}
	s.DropIn = filepath.Join("/etc/systemd/system", s.Unit+".d", SandboxDropIn)
	st := fsys.Stat(s.DropIn)
	switch {
	case st.Err != "":
		s.Problem = "cannot inspect " + s.DropIn + ": " + st.Err
	case !st.Exists:
		s.Problem = s.DropIn + " does not exist"
	case st.IsDir:
		s.Problem = s.DropIn + " is a directory"
	case st.UID != 0:
		s.Problem = s.DropIn + " is not owned by root"
	case st.Mode&0o022 != 0:
		s.Problem = s.DropIn + " is writable by others than root"
	default:
		s.Found = true
	}
	return s
}
