package testserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClusterHosts are the loopback addresses cluster tests use as three
// "hosts" (the whole 127/8 is loopback on Linux).
var ClusterHosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// ClusterNode is a valkey-server with cluster-enabled yes, listening on
// IP (one of ClusterHosts), with its cluster bus on its own port.
type ClusterNode struct {
	*Server
	IP      string
	BusPort int
	// TLSPort is the TLS client port (StartTLSClusterNode; the cluster
	// then announces it), 0 without TLS.
	TLSPort int
	extra   []string
	cred    *syscall.Credential
	done    chan struct{}
}

// StartClusterNode starts a bare cluster node on ip: free client and bus
// ports, cluster-node-timeout 1000 ms (failover within seconds), plus extra
// config lines. It is ended by pid when the test ends.
func StartClusterNode(t testing.TB, ip string, extra ...string) *ClusterNode {
	t.Helper()
	return startClusterNode(t, ip, nil, nil, extra)
}

// StartClusterNodeAs is StartClusterNode run by uid:gid in a directory that
// user owns (the test must be root): a login user's server joined to a
// cluster, which the modules must not trust.
func StartClusterNodeAs(t testing.TB, ip string, uid, gid int, extra ...string) *ClusterNode {
	t.Helper()
	return startClusterNode(t, ip, nil, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, extra)
}

// TLSFiles are a node's TLS material (paths).
type TLSFiles struct{ Cert, Key, CA string }

// StartTLSClusterNode is StartClusterNode with TLS on a port of its own,
// tls-cluster and tls-replication on (the bus and replication over TLS),
// client certificates not required. The plain port stays, for the test's
// own valkey-cli.
func StartTLSClusterNode(t testing.TB, ip string, f TLSFiles, extra ...string) *ClusterNode {
	t.Helper()
	return startClusterNode(t, ip, &f, nil, extra)
}

func startClusterNode(t testing.TB, ip string, tlsFiles *TLSFiles, cred *syscall.Credential, extra []string) *ClusterNode {
	t.Helper()
	bin := Bin(t)
	lookPath(t, "valkey-cli")
	dir := t.TempDir()
	if cred != nil {
		dir = OwnedDir(t, int(cred.Uid), int(cred.Gid))
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err1 := freePortOn(ip)
		bus, err2 := freePortOn(ip)
		tlsPort, err3 := freePortOn(ip)
		if err1 != nil || err2 != nil || err3 != nil || port == bus || tlsPort == port || tlsPort == bus {
			continue
		}
		n := &ClusterNode{IP: ip, BusPort: bus, extra: extra, Server: &Server{
			Addr: net.JoinHostPort(ip, strconv.Itoa(port)), Port: port, Dir: dir, t: t,
			ConfPath: filepath.Join(dir, "valkey.conf"), LogPath: filepath.Join(dir, "valkey.log"),
		}}
		lines := append([]string{
			"port " + strconv.Itoa(port), "bind " + ip, "dir " + quote(dir), `save ""`, "appendonly no",
			"daemonize no", "logfile " + quote(n.LogPath), "cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-port " + strconv.Itoa(bus), "cluster-node-timeout 1000",
			// Loopback has one source address (127.0.0.1) for every 127/8
			// destination: announce and bind the node's own, as a real host would.
			"cluster-announce-ip " + ip, "bind-source-addr " + ip,
			// Replicas sync at once (the default waits 5 s for more replicas).
			"repl-diskless-sync-delay 0",
		}, extra...)
		if tlsFiles != nil {
			n.TLSPort = tlsPort
			lines = append(lines, "tls-port "+strconv.Itoa(tlsPort), "tls-cluster yes", "tls-replication yes",
				"tls-cert-file "+quote(tlsFiles.Cert), "tls-key-file "+quote(tlsFiles.Key),
				"tls-ca-cert-file "+quote(tlsFiles.CA), "tls-auth-clients no")
		}
		if err := os.WriteFile(n.ConfPath, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		n.cred = cred
		if cred != nil {
			if err := os.Chown(n.ConfPath, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
		err := n.run(bin)
		if err == nil {
			t.Cleanup(func() { n.kill() })
			return n
		}
		if err != errBind {
			t.Fatalf("testserver: %v", err)
		}
	}
	t.Fatalf("testserver: no free ports on %s after 5 attempts", ip)
	return nil
}

func (n *ClusterNode) run(bin string) error {
	n.cmd = exec.Command(bin, n.ConfPath)
	n.cmd.Dir = n.Dir
	n.cmd.SysProcAttr = diesWithTheTest()
	n.cmd.SysProcAttr.Credential = n.cred
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start valkey-server: %w", err)
	}
	done := make(chan struct{})
	n.done = done
	go func() { _ = n.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(n.LogPath)
			if strings.Contains(string(log), "Address already in use") {
				return errBind
			}
			return fmt.Errorf("valkey-server exited early; log:\n%s", log)
		default:
		}
		if pingOK(n.Addr) && listensOnIP(n.cmd.Process.Pid, n.IP, n.Port) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = n.cmd.Process.Kill()
			<-done
			return fmt.Errorf("valkey-server did not answer on %s within %s", n.Addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the event is the answered PING
	}
}

func (n *ClusterNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Pid is the server's process id.
func (n *ClusterNode) Pid() int { return n.cmd.Process.Pid }

// Kill ends the node by its pid (SIGKILL, as a crash) and waits for its exit.
func (n *ClusterNode) Kill() { n.kill() }

// Restart starts the node again with its config and nodes.conf, on the
// same ports (after Kill).
func (n *ClusterNode) Restart() {
	n.t.Helper()
	if err := n.run(Bin(n.t)); err != nil {
		n.t.Fatalf("testserver: restarting %s: %v", n.Addr, err)
	}
}

// CLIErr runs valkey-cli against the node's own address.
func (n *ClusterNode) CLIErr(args ...string) (string, error) {
	full := append([]string{"-h", n.IP, "-p", strconv.Itoa(n.Port), "--no-auth-warning"}, args...)
	cmd := exec.Command("valkey-cli", full...)
	if n.Password != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+n.Password)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimRight(string(out), "\n"), err
}

// CLI runs valkey-cli against the node and fails the test on an error.
func (n *ClusterNode) CLI(args ...string) string {
	n.t.Helper()
	out, err := n.CLIErr(args...)
	if err != nil {
		n.t.Fatalf("valkey-cli %s on %s: %v: %s", strings.Join(args, " "), n.Addr, err, out)
	}
	return out
}

// StartCluster starts count bare nodes spread over ClusterHosts in turn
// (node i on host i mod 3).
func StartCluster(t testing.TB, count int, extra ...string) []*ClusterNode {
	t.Helper()
	nodes := make([]*ClusterNode, count)
	for i := range nodes {
		nodes[i] = StartClusterNode(t, ClusterHosts[i%len(ClusterHosts)], extra...)
	}
	return nodes
}

func freePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// listensOnIP is listensOn for any IPv4 address.
func listensOnIP(pid int, ip string, port int) bool {
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	want := fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(v4), port)
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == want && f[3] == "0A" {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
			return true
		}
	}
	return false
}

// FormCluster makes a one-shard cluster by hand (no module): primary
// serves every slot when slots is true, each of replicas meets it and
// replicates it. It returns once the primary sees every replica attached
// and healthy, each replica's link is up, and (with slots) the primary
// reports cluster_state:ok. Polled with a bounded wait: the server has no
// event for it.
func FormCluster(t testing.TB, primary *ClusterNode, slots bool, replicas ...*ClusterNode) {
	t.Helper()
	if slots {
		primary.CLI("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	}
	pid := strings.TrimSpace(primary.CLI("CLUSTER", "MYID"))
	for _, r := range replicas {
		r.CLI("CLUSTER", "MEET", primary.IP, strconv.Itoa(primary.Port), strconv.Itoa(primary.BusPort))
	}
	for _, r := range replicas {
		waitFor(t, r, "to know the primary", func() bool {
			line := nodesLine(r, pid)
			return line != "" && !strings.Contains(line, "handshake")
		})
		r.CLI("CLUSTER", "REPLICATE", pid)
		rid := strings.TrimSpace(r.CLI("CLUSTER", "MYID"))
		waitFor(t, primary, "to see the replica attached", func() bool {
			f := strings.Fields(nodesLine(primary, rid))
			return len(f) > 3 && f[3] == pid && !strings.Contains(f[2], "fail") && !strings.Contains(f[2], "handshake")
		})
		waitFor(t, r, "to sync", func() bool { return strings.Contains(r.CLI("INFO", "replication"), "master_link_status:up") })
	}
	if slots {
		waitFor(t, primary, "to reach cluster_state:ok", func() bool { return strings.Contains(primary.CLI("CLUSTER", "INFO"), "cluster_state:ok") })
	}
}

// nodesLine is the CLUSTER NODES line of node id as n sees it ("" if none).
func nodesLine(n *ClusterNode, id string) string {
	for _, line := range strings.Split(n.CLI("CLUSTER", "NODES"), "\n") {
		if strings.HasPrefix(line, id+" ") {
			return line
		}
	}
	return ""
}

func waitFor(t testing.TB, n *ClusterNode, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testserver: %s did not get %s within %s:\n%s", n.Addr, what, startTimeout, n.CLI("CLUSTER", "NODES"))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the event is the node's changed state
	}
}
