package sentinel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/conffile"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/safefs"
)

// monitorState is one monitor as Sentinel reports it (SENTINEL MASTER and
// friends) plus what only its config file says (auth-user, auth-pass,
// leader-epoch).
type monitorState struct {
	name                                     string
	host                                     string // the primary Sentinel follows now
	port                                     int
	quorum, downAfter, failoverTO, parallelS int
	flags                                    []string
	configEpoch                              int64
	replicas, sentinels                      []string
	ckquorum                                 Quorum
	// From the file: authUser, authPass ("" when not set), leaderEpoch
	// (-1 when the file has no line).
	authUser, authPass string
	leaderEpoch        int64
	inFile             bool
}

// sentinelState is what the module reads before planning and after applying.
type sentinelState struct {
	configFile   string
	monitors     map[string]*monitorState
	settings     map[string]string // SENTINEL CONFIG GET *, secrets removed
	sentinelPass string            // runtime (or file) sentinel-pass, never reported
	currentEpoch int64             // from the file, -1 unknown
	denyScripts  bool
	fileRead     bool
	trust        safefs.Trust
}

// maxMonitors bounds what the module reads from a Sentinel (every reply is
// bounded by conn's guard too).
const maxMonitors = 4096

func cmd(c valkey.Client, args ...string) valkey.Completed {
	// Sentinel's subcommands have no typed builders in valkey-go.
	return c.B().Arbitrary(args[0]).Args(args[1:]...).Build()
}

// isSentinel checks INFO server and returns the config file it names.
func isSentinel(ctx context.Context, c valkey.Client, addr string) (string, error) {
	text, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return "", fmt.Errorf("failed to read INFO server from %s: %w", addr, err)
	}
	info := conn.ParseInfo(text)
	mode := info["server_mode"]
	if mode == "" {
		mode = info["redis_mode"]
	}
	if mode != "sentinel" {
		return "", fmt.Errorf("the server at %s is not a Sentinel (it runs in %q mode); point login_host/login_port at a Sentinel (default port %d)", addr, mode, DefaultPort)
	}
	return info["config_file"], nil
}

// readState reads every monitor, the global settings and the config file.
//
// The file is read the way root may read a file in a directory Sentinel's
// user owns (Sentinel rewrites it there): through trust, no link followed
// that root did not make, so that user cannot point the module at a
// root-only file.
func readState(ctx context.Context, c valkey.Client, configFile string, trust safefs.Trust) (*sentinelState, error) {
	st := &sentinelState{configFile: configFile, trust: trust, monitors: map[string]*monitorState{}, currentEpoch: -1, denyScripts: true}
	masters, err := c.Do(ctx, cmd(c, "SENTINEL", "MASTERS")).ToArray()
	if err != nil {
		return nil, fmt.Errorf("failed to list the monitors (SENTINEL MASTERS): %w", err)
	}
	if len(masters) > maxMonitors {
		return nil, fmt.Errorf("the Sentinel reports %d monitors, more than the %d this module reads", len(masters), maxMonitors)
	}
	for _, m := range masters {
		kv, err := m.AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("failed to read SENTINEL MASTERS: %w", err)
		}
		ms := parseMaster(kv)
		st.monitors[ms.name] = ms
	}
	for _, ms := range st.monitors {
		if err := readDetails(ctx, c, ms); err != nil {
			return nil, err
		}
	}
	settings, err := c.Do(ctx, cmd(c, "SENTINEL", "CONFIG", "GET", "*")).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("failed to read the Sentinel's settings (SENTINEL CONFIG GET *): %w", err)
	}
	st.sentinelPass = settings["sentinel-pass"]
	delete(settings, "sentinel-pass")
	st.settings = settings
	if configFile != "" {
		if err := st.readFile(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func atoi(s string) int           { n, _ := strconv.Atoi(s); return n }
func atoi64(s string) int64       { n, _ := strconv.ParseInt(s, 10, 64); return n }
func addr(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }

func parseMaster(kv map[string]string) *monitorState {
	return &monitorState{
		name:        kv["name"],
		host:        kv["ip"],
		port:        atoi(kv["port"]),
		quorum:      atoi(kv["quorum"]),
		downAfter:   atoi(kv["down-after-milliseconds"]),
		failoverTO:  atoi(kv["failover-timeout"]),
		parallelS:   atoi(kv["parallel-syncs"]),
		flags:       strings.Split(kv["flags"], ","),
		configEpoch: atoi64(kv["config-epoch"]),
		leaderEpoch: -1,
	}
}

// readDetails reads a monitor's replicas, sentinels, current primary and
// quorum check in one pipelined round trip.
func readDetails(ctx context.Context, c valkey.Client, ms *monitorState) error {
	res := c.DoMulti(ctx,
		cmd(c, "SENTINEL", "REPLICAS", ms.name),
		cmd(c, "SENTINEL", "SENTINELS", ms.name),
		cmd(c, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", ms.name),
		cmd(c, "SENTINEL", "CKQUORUM", ms.name),
	)
	for i, dst := range []*[]string{&ms.replicas, &ms.sentinels} {
		arr, err := res[i].ToArray()
		if err != nil {
			return fmt.Errorf("failed to read monitor %q's peers: %w", ms.name, err)
		}
		for _, e := range arr {
			kv, err := e.AsStrMap()
			if err != nil {
				return fmt.Errorf("failed to read monitor %q's peers: %w", ms.name, err)
			}
			*dst = append(*dst, addr(kv["ip"], atoi(kv["port"])))
		}
		sort.Strings(*dst)
	}
	if hp, err := res[2].AsStrSlice(); err == nil && len(hp) == 2 {
		ms.host, ms.port = hp[0], atoi(hp[1])
	}
	text, err := res[3].ToString()
	ms.ckquorum = Quorum{OK: err == nil, Message: text}
	if err != nil {
		var verr *valkey.ValkeyError
		if errors.As(err, &verr) {
			ms.ckquorum.Message = verr.Error()
		} else {
			return fmt.Errorf("failed to check monitor %q's quorum: %w", ms.name, err)
		}
	}
	return nil
}

// readFile reads what only Sentinel's config file says. The file is
// Sentinel's (written by its own rewrite): read, never written.
func (st *sentinelState) readFile() error {
	cfg, err := conffile.LoadTrusted(st.configFile, st.trust)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Sentinel's config file %q does not exist", st.configFile)
		}
		return err
	}
	st.fileRead = true
	for _, o := range cfg.Occurrences("sentinel") {
		if len(o.Args) < 2 {
			continue
		}
		sub := conffile.ASCIILower(o.Args[0])
		if sub == "current-epoch" {
			st.currentEpoch = atoi64(o.Args[1])
			continue
		}
		if sub == "deny-scripts-reconfig" {
			st.denyScripts = conffile.ASCIILower(o.Args[1]) != "no"
			continue
		}
		ms := st.monitors[o.Args[1]]
		if ms == nil {
			continue
		}
		val := ""
		if len(o.Args) > 2 {
			val = o.Args[2]
		}
		switch sub {
		case "monitor":
			ms.inFile = true
		case "auth-user":
			ms.authUser = val
		case "auth-pass":
			ms.authPass = val
		case "leader-epoch":
			ms.leaderEpoch = atoi64(val)
		}
	}
	return nil
}
