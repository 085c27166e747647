// Package peer finds and verifies the process on the other end of a
// connection to a local server, before any secret is sent to it.
//
// A unix socket names its peer (SO_PEERCRED). A TCP connection to this host
// is found in /proc/net/tcp{,6} as the socket whose endpoints mirror ours;
// its inode leads to the process holding it (/proc/PID/fd) and that to the
// executable (/proc/PID/exe). A connection whose other end is not in this
// host's socket table goes to another host: the caller then trusts the
// peer only through TLS.
//
// The lookup asks the kernel for the one socket (sock_diag), then reads the
// names of the processes and the descriptors of those that could be a
// server, so it costs about a millisecond; it scans the descriptors of
// every process only to name a refused one.
package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valkeyops/secure/internal/safefs"
)

// ServerNames are the executables a Valkey (or Redis) server runs as. The
// server binary is multi-call: Debian installs valkey-server as a link to
// valkey-check-rdb, so /proc/PID/exe names the latter.
var ServerNames = []string{
	"valkey-server", "valkey-sentinel", "valkey-check-rdb", "valkey-check-aof",
	"redis-server", "redis-sentinel", "redis-check-rdb", "redis-check-aof",
}

// The uids of login users (UID_MIN and UID_MAX of login.defs). A server
// runs as root, as a system account (valkey, redis, nobody) or as the
// module's own user; a login user could start the real binary on the port
// of a stopped server and collect the passwords sent to it.
const (
	LoginUIDMin = 1000
	LoginUIDMax = 60000
	// NobodyUID is the overflow user, a system account above the login range.
	NobodyUID = 65534
)

// ErrUntrusted is matched (errors.Is) by every refusal of a peer.
var ErrUntrusted = errors.New("untrusted peer")

// refusal is a refused peer; its text is the reason alone, one clause.
type refusal struct{ reason string }

func (r *refusal) Error() string        { return r.reason }
func (r *refusal) Is(target error) bool { return target == ErrUntrusted }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// Process is the process behind a local connection.
type Process struct {
	PID      int
	UID, GID int    // effective user and group
	Exe      string // the executable's path (" (deleted)" removed)
	Args     []string
	// Unverifiable is set when this process may not inspect the peer (it
	// is not root and the peer belongs to another user): only UID is known.
	Unverifiable bool
}

// procRoot is /proc (tests of the parsers may point it elsewhere).
var procRoot = "/proc"

// Identify returns the local process that accepted c, or nil when the peer
// is on another host. It waits (until ctx ends) for the server to accept the
// connection, since a socket still in the accept queue has no process yet.
func Identify(ctx context.Context, c net.Conn) (*Process, error) {
	switch cc := c.(type) {
	case *net.UnixConn:
		return identifyUnix(cc)
	case *net.TCPConn:
		return identifyTCP(ctx, cc)
	}
	return nil, refuse("cannot identify the peer of a %T", c)
}

func identifyUnix(c *net.UnixConn) (*Process, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("failed to read the peer of the unix socket (SO_PEERCRED): %w", cerr)
	}
	return describe(int(cred.Pid), int(cred.Uid), int(cred.Gid))
}

// sockEntry is one line of /proc/net/tcp{,6}.
type sockEntry struct {
	local, remote endpoint
	state         string
	uid           int
	inode         uint64
}

type endpoint struct {
	ip   net.IP
	port int
}

func (a endpoint) equal(ip net.IP, port int) bool { return a.port == port && a.ip.Equal(ip) }

func identifyTCP(ctx context.Context, c *net.TCPConn) (*Process, error) {
	la, _ := c.LocalAddr().(*net.TCPAddr)
	ra, _ := c.RemoteAddr().(*net.TCPAddr)
	if la == nil || ra == nil {
		return nil, refuse("the connection has no addresses")
	}
	wait := 100 * time.Microsecond
	for {
		e, found, err := findServerSide(la, ra)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, nil // not in this host's socket table: a remote peer
		}
		if e.inode != 0 {
			return ownerOf(e)
		}
		// Still in the accept queue: no process holds it yet.
		select {
		case <-ctx.Done():
			return nil, refuse("no process accepted the connection (%v)", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Millisecond)
	}
}

// findServerSide finds the socket whose local end is ra and remote end la:
// by one exact sock_diag lookup, or (when that finds nothing or is not
// available) in the full socket tables of /proc, which also find a
// dual-stack listener's IPv4-mapped socket.
func findServerSide(la, ra *net.TCPAddr) (sockEntry, bool, error) {
	if e, found, err := sockDiag(ra, la); err == nil && found && e.state == "01" {
		return e, true, nil
	}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		data, err := os.ReadFile(filepath.Join(procRoot, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return sockEntry{}, false, fmt.Errorf("failed to read %s: %w", filepath.Join(procRoot, f), err)
		}
		for _, line := range bytes.Split(data, []byte("\n"))[1:] {
			e, ok := parseSockLine(string(line))
			if ok && e.state == "01" && e.local.equal(ra.IP, ra.Port) && e.remote.equal(la.IP, la.Port) {
				return e, true, nil
			}
		}
	}
	return sockEntry{}, false, nil
}

func parseSockLine(line string) (sockEntry, bool) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return sockEntry{}, false
	}
	local, ok1 := parseAddr(f[1])
	remote, ok2 := parseAddr(f[2])
	uid, err1 := strconv.Atoi(f[7])
	inode, err2 := strconv.ParseUint(f[9], 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return sockEntry{}, false
	}
	return sockEntry{local: local, remote: remote, state: f[3], uid: uid, inode: inode}, true
}

// parseAddr reads "0100007F:18EB": the address as 32-bit words in host
// byte order, the port in hex.
func parseAddr(s string) (endpoint, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return endpoint{}, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return endpoint{}, false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return endpoint{}, false
	}
	return endpoint{ip: ip, port: int(port)}, true
}

// ownerOf finds the process holding the socket inode: first among the
// processes named like a server, then (only to name a refused peer)
// among all.
func ownerOf(e sockEntry) (*Process, error) {
	pids, err := pidList()
	if err != nil {
		return nil, err
	}
	target := "socket:[" + strconv.FormatUint(e.inode, 10) + "]"
	var likely, others []int
	for _, pid := range pids {
		// One readlink per process: cheaper than reading its name.
		exe, _ := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
		if isServerName(filepath.Base(strings.TrimSuffix(exe, " (deleted)"))) {
			likely = append(likely, pid)
		} else {
			others = append(others, pid)
		}
	}
	denied := false
	for _, set := range [][]int{likely, others} {
		for _, pid := range set {
			has, err := holds(pid, target)
			if errors.Is(err, fs.ErrPermission) {
				denied = true
			}
			if has {
				return describe(pid, e.uid, -1)
			}
		}
	}
	if denied && os.Geteuid() != 0 {
		// Another user's process: only the socket's owner is known.
		return &Process{PID: -1, UID: e.uid, GID: -1, Unverifiable: true}, nil
	}
	return nil, refuse("no process on this host holds the accepted connection")
}

func pidList() ([]int, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", procRoot, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1) // unsorted: no need to sort
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", procRoot, err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func isServerName(name string) bool { return slices.Contains(ServerNames, name) }

// holds reports whether pid has an open descriptor for target.
func holds(pid int, target string) (bool, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, d := range ents {
		if l, err := os.Readlink(filepath.Join(dir, d.Name())); err == nil && l == target {
			return true, nil
		}
	}
	return false, nil
}

// describe reads what /proc tells about pid.
func describe(pid, uid, gid int) (*Process, error) {
	base := filepath.Join(procRoot, strconv.Itoa(pid))
	p := &Process{PID: pid, UID: uid, GID: gid}
	if status, err := os.ReadFile(filepath.Join(base, "status")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(status))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 3 && (f[0] == "Uid:" || f[0] == "Gid:") {
				if n, err := strconv.Atoi(f[2]); err == nil { // effective
					if f[0] == "Uid:" {
						p.UID = n
					} else {
						p.GID = n
					}
				}
			}
		}
	}
	exe, err := os.Readlink(filepath.Join(base, "exe"))
	if err != nil {
		if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
			p.Unverifiable = true
			return p, nil
		}
		return nil, refuse("cannot read the executable of pid %d: %v", pid, err)
	}
	p.Exe = strings.TrimSuffix(exe, " (deleted)")
	if cmd, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil {
		p.Args = strings.Split(strings.TrimSuffix(string(cmd), "\x00"), "\x00")
	}
	return p, nil
}

// Verify checks that p may be given a secret: its executable is a Valkey
// (or Redis) server binary owned by root and writable by nobody else, in
// directories that only root can write, and it runs as root, a system
// account or this process's user. The error is one sentence.
func (p *Process) Verify() error {
	if !p.trustedUID() {
		if p.UID > LoginUIDMax {
			return refuse("the process runs as uid %d, above the system and login accounts (a user namespace's subordinate uid), not as root, a system account or uid %d", p.UID, os.Geteuid())
		}
		return refuse("the process runs as uid %d, a login user, not as root, a system account or uid %d", p.UID, os.Geteuid())
	}
	if p.Unverifiable {
		return nil // all an unprivileged module can know; the uid passed
	}
	name := filepath.Base(p.Exe)
	if !isServerName(name) {
		return refuse("the process (pid %d, %s) is not a Valkey server", p.PID, p.Exe)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(procRoot, strconv.Itoa(p.PID), "exe"), &st); err != nil {
		return refuse("cannot inspect the executable of pid %d: %v", p.PID, err)
	}
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		return refuse("the server's executable %s is owned by uid %d with mode %04o, not owned by root and writable only by root", p.Exe, st.Uid, st.Mode&0o7777)
	}
	d, err := safefs.OpenDir(filepath.Dir(p.Exe), safefs.Trust{})
	if err != nil {
		return refuse("the server's executable %s is in an unsafe directory: %v", p.Exe, err)
	}
	_ = d.Close()
	return nil
}

// trustedUID: root, a system account, nobody, or this process's user. Every
// other uid is refused: login users, and the uids above them, which
// /etc/subuid hands to login users' user namespaces (rootless containers run
// root's own valkey-server as such a uid, on the host's network).
func (p *Process) trustedUID() bool {
	return p.UID >= 0 && (p.UID < LoginUIDMin || p.UID == NobodyUID || p.UID == os.Geteuid())
}

// ConfigArg is the config file the server was started with, read from its
// command line; ok is false when the command line cannot tell: Valkey
// rewrites its process title (unless set-proc-title is no), which replaces
// the arguments, and a relative path cannot be resolved any more because
// the server changes its working directory to dir at startup.
func (p *Process) ConfigArg() (path string, ok bool) {
	if len(p.Args) < 2 {
		return "", false
	}
	a := p.Args[1]
	if strings.HasPrefix(a, "-") {
		return "", true // started without a config file
	}
	if !filepath.IsAbs(a) {
		return "", false
	}
	return filepath.Clean(a), true
}

// String names the process for messages.
func (p *Process) String() string {
	if p.Unverifiable {
		return fmt.Sprintf("a process of uid %d", p.UID)
	}
	return fmt.Sprintf("%s (pid %d, uid %d)", p.Exe, p.PID, p.UID)
}

// Trust is what the server's process may own on the paths root writes for
// it: its own user and group (the server writes its config directory with
// CONFIG REWRITE, its aclfile with ACL SAVE). A nil or unverifiable
// process adds nobody.
func (p *Process) Trust() safefs.Trust {
	if p == nil || p.Unverifiable || p.UID == 0 {
		return safefs.Trust{}
	}
	who := fmt.Sprintf("the server's user (uid %d)", p.UID)
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
		who = fmt.Sprintf("the server's user %s", u.Username)
	}
	t := safefs.Trust{UIDs: []int{p.UID}, Who: who}
	if p.GID > 0 {
		t.GIDs = []int{p.GID}
	}
	return t
}

// ConfigFile checks the config file a server reported (INFO config_file)
// against what /proc says of its process: the process must be local and
// verified, and when its command line still holds its arguments, the config
// argument must be the same file. It returns the path to use; the error is
// one clause naming the disagreement.
func (p *Process) ConfigFile(reported string) (string, error) {
	if p == nil {
		return "", errors.New("the server is on another host, so the config file it reports is not a file here")
	}
	if reported == "" {
		return "", nil
	}
	if !filepath.IsAbs(reported) {
		return "", fmt.Errorf("the server reports the relative config file %q", reported)
	}
	if arg, ok := p.ConfigArg(); ok && arg != filepath.Clean(reported) {
		return "", fmt.Errorf("the server reports config file %q, but its process (pid %d) was started with %q", reported, p.PID, arg)
	}
	return filepath.Clean(reported), nil
}
