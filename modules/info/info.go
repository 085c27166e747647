// Package info is the valkey_info module: it reads what a server or a
// Sentinel says about itself and its place in the topology (version, role,
// replication offsets and links, persistence, the Sentinel's view of its
// primaries, cluster health) and returns it. It never changes anything, so
// check mode and a real run are the same read.
package info

import (
	"context"
	"fmt"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/conn"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/outcome"
	"github.com/valkeyops/secure/internal/topology"
)

// Options are valkey_info's options.
type Options struct {
	conn.Options
	// JournalOptions are accepted so that module_defaults for the
	// valkeyops.secure.valkey group apply to this module too; it changes
	// nothing, so it never writes the journal.
	journal.JournalOptions
	// ConfigFile names the instance (journal.InstanceName) when the server
	// does not report one (default: INFO server config_file). Not read.
	ConfigFile string `json:"config_file" spec:"path"`
}

// The ACL rules of a read-only monitoring user that valkey_info needs: on
// a data node, and on a Sentinel. One source: the module documentation
// and the tests use these.
const (
	DataNodeRule = "+info +cluster|info"
	SentinelRule = "+info +role +sentinel|primaries +sentinel|replicas +sentinel|sentinels"
)

// Info is what valkey_info returns as `info`.
type Info struct {
	Name       string `json:"name"` // valkey (or redis)
	Version    string `json:"version"`
	RunID      string `json:"run_id"`
	Instance   string `json:"instance"`
	ConfigFile string `json:"config_file"`
	Mode       string `json:"mode"` // standalone, sentinel or cluster
	Role       string `json:"role"` // primary, replica or sentinel
	// Replication and Persistence: data nodes only.
	Replication *topology.Replication `json:"replication,omitempty"`
	Persistence *topology.Persistence `json:"persistence,omitempty"`
	// Sentinel: a Sentinel only.
	Sentinel *Sentinel `json:"sentinel,omitempty"`
	// Cluster: a node with cluster_enabled only.
	Cluster *topology.ClusterInfo `json:"cluster,omitempty"`
}

// Sentinel is a Sentinel's view of the primaries it monitors.
type Sentinel struct {
	Monitors []*topology.Monitor `json:"monitors"`
}

// Fields are valkey_info's return values.
type Fields struct {
	Info *Info `json:"info"`
}

// Main is the module's entry point.
func Main(req *ansible.Request) *ansible.Result {
	return outcome.Run(&outcome.Task{Req: req}, &infoRun{req: req})
}

type infoRun struct{ req *ansible.Request }

// Plan reads everything; there is nothing to apply.
func (m *infoRun) Plan(_ context.Context, t *outcome.Task) error {
	var opts Options
	if err := m.req.Decode(&opts); err != nil {
		return err
	}
	if err := opts.Options.Validate(); err != nil {
		return err
	}
	if err := opts.JournalOptions.Validate(); err != nil {
		return err
	}
	client, err := conn.Open(&opts.Options)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout())
	defer cancel()
	r := &reader{client: client, user: opts.LoginUser, addr: opts.Address()}
	info, err := r.read(ctx, opts.ConfigFile)
	if err != nil {
		return err
	}
	t.Res.Fields = &Fields{Info: info}
	t.Res.Msg = fmt.Sprintf("%s %s at %s: %s", info.Name, info.Version, opts.Address(), info.summary())
	return nil
}

// Apply is never called: the plan changes nothing.
func (m *infoRun) Apply(context.Context, *outcome.Task) error { return nil }

// Record is never called: the plan changes nothing.
func (m *infoRun) Record(bool) journal.Entry { return journal.Entry{} }

// Unchanged has nothing to clear.
func (m *infoRun) Unchanged() {}

func (i *Info) summary() string {
	s := i.Role
	if r := i.Replication; r != nil && r.Role == topology.RoleReplica {
		s += fmt.Sprintf(" of %s:%d (link %s)", r.PrimaryHost, r.PrimaryPort, r.LinkStatus)
	} else if r != nil {
		s += fmt.Sprintf(" with %d connected %s", r.ConnectedReplicas, plural(r.ConnectedReplicas, "replica", "replicas"))
	}
	if i.Sentinel != nil {
		s += fmt.Sprintf(" monitoring %d %s", len(i.Sentinel.Monitors), plural(len(i.Sentinel.Monitors), "primary", "primaries"))
	}
	if c := i.Cluster; c != nil {
		s += fmt.Sprintf(", cluster state %s", c.State)
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type reader struct {
	client valkey.Client
	user   string
	addr   string
}

// failed turns a command's error into one sentence: a missing right names
// the ACL rule valkey_info needs; the server's own text is not quoted for
// it (a hostile server could write anything there).
func (r *reader) failed(command, rule string, err error) error {
	if strings.Contains(err.Error(), "NOPERM") {
		who := r.user
		if who == "" {
			who = "default"
		}
		return fmt.Errorf("the login user %q may not run %s on %s; valkey_info needs a user with the ACL rule %q", who, command, r.addr, rule)
	}
	return fmt.Errorf("failed to read %s from %s: %w", command, r.addr, err)
}

func (r *reader) text(ctx context.Context, cmd valkey.Completed, command, rule string) (string, error) {
	s, err := r.client.Do(ctx, cmd).ToString()
	if err != nil {
		return "", r.failed(command, rule, err)
	}
	// Over RESP3 INFO and CLUSTER INFO are verbatim strings, which
	// valkey-go returns with their format prefix.
	s, _ = strings.CutPrefix(s, "txt:")
	return s, nil
}

func (r *reader) read(ctx context.Context, configFile string) (*Info, error) {
	c := r.client
	text, err := r.text(ctx, c.B().Info().Section("server").Build(), "INFO server", DataNodeRule)
	if err != nil {
		return nil, err
	}
	srv, err := topology.ParseServer(text)
	if err != nil {
		return nil, err
	}
	info := &Info{Name: srv.Name, Version: srv.Version, RunID: srv.RunID, Mode: srv.Mode, ConfigFile: srv.ConfigFile}
	if configFile != "" {
		info.ConfigFile = configFile
	}
	info.Instance = journal.InstanceName(info.ConfigFile)
	if srv.Mode == topology.ModeSentinel {
		info.Role = topology.RoleSentinel
		info.Sentinel, err = r.sentinel(ctx)
		return info, err
	}
	if text, err = r.text(ctx, c.B().Info().Section("replication").Build(), "INFO replication", DataNodeRule); err != nil {
		return nil, err
	}
	if info.Replication, err = topology.ParseReplication(text); err != nil {
		return nil, err
	}
	info.Role = info.Replication.Role
	if text, err = r.text(ctx, c.B().Info().Section("persistence").Build(), "INFO persistence", DataNodeRule); err != nil {
		return nil, err
	}
	if info.Persistence, err = topology.ParsePersistence(text); err != nil {
		return nil, err
	}
	if srv.Mode == topology.ModeCluster {
		if text, err = r.text(ctx, c.B().ClusterInfo().Build(), "CLUSTER INFO", DataNodeRule); err != nil {
			return nil, err
		}
		if info.Cluster, err = topology.ParseClusterInfo(text); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// sentinel reads a Sentinel's monitors, and for each its replicas and the
// other Sentinels. ROLE is read first: it lists the monitored names, and
// SENTINEL PRIMARIES must list the same ones.
func (r *reader) sentinel(ctx context.Context) (*Sentinel, error) {
	c := r.client
	v, err := c.Do(ctx, c.B().Role().Build()).ToAny()
	if err != nil {
		return nil, r.failed("ROLE", SentinelRule, err)
	}
	arr, _ := v.([]any)
	role, err := topology.ParseRole(arr)
	if err != nil {
		return nil, err
	}
	if role.Role != topology.RoleSentinel {
		return nil, fmt.Errorf("the server at %s says it runs in sentinel mode, yet ROLE says %s", r.addr, role.Role)
	}
	entries, err := r.maps(ctx, c.B().Arbitrary("SENTINEL", "PRIMARIES").Build(), "SENTINEL PRIMARIES")
	if err != nil {
		return nil, err
	}
	if len(entries) != len(role.Primaries) {
		return nil, fmt.Errorf("the Sentinel at %s lists %d primaries in SENTINEL PRIMARIES but %d in ROLE", r.addr, len(entries), len(role.Primaries))
	}
	s := &Sentinel{Monitors: []*topology.Monitor{}}
	for _, e := range entries {
		mon, err := topology.ParseMonitor(e)
		if err != nil {
			return nil, err
		}
		reps, err := r.maps(ctx, c.B().SentinelReplicas().Master(mon.Name).Build(), "SENTINEL REPLICAS")
		if err != nil {
			return nil, err
		}
		for _, e := range reps {
			rep, err := topology.ParseSentinelReplica(e)
			if err != nil {
				return nil, err
			}
			mon.Replicas = append(mon.Replicas, rep)
		}
		sens, err := r.maps(ctx, c.B().SentinelSentinels().Master(mon.Name).Build(), "SENTINEL SENTINELS")
		if err != nil {
			return nil, err
		}
		for _, e := range sens {
			sen, err := topology.ParseSentinelInstance(e)
			if err != nil {
				return nil, err
			}
			mon.Sentinels = append(mon.Sentinels, sen)
		}
		s.Monitors = append(s.Monitors, mon)
	}
	return s, nil
}

// maps reads an array of field/value maps, bounded by topology.MaxMonitors.
func (r *reader) maps(ctx context.Context, cmd valkey.Completed, command string) ([]map[string]string, error) {
	resp := r.client.Do(ctx, cmd)
	arr, err := resp.ToArray()
	if err != nil {
		return nil, r.failed(command, SentinelRule, err)
	}
	if len(arr) > topology.MaxMonitors {
		return nil, fmt.Errorf("the server's %s reply lists %d entries, more than the limit of %d", command, len(arr), topology.MaxMonitors)
	}
	out := make([]map[string]string, 0, len(arr))
	for i := range arr {
		m, err := arr[i].AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("the server's %s reply is malformed: entry %d is not a list of field/value pairs", command, i+1)
		}
		out = append(out, m)
	}
	return out, nil
}
