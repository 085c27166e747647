// Package loadgen is a client workload for tests and benchmarks of
// topology changes (slot moves, failovers, rolling restarts): workers write
// keys in every hash slot and read each back, and the report says what a
// user relies on: acknowledged writes, keys lost, errors by kind, the
// longest time the service was unavailable to a worker, and latency
// percentiles. bench/loadgen is its command line.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Config is one run.
type Config struct {
	// Addrs are the servers (seed nodes with Cluster).
	Addrs []string
	// Cluster uses valkey-go's cluster client (MOVED/ASK followed).
	Cluster bool
	// Sentinel, when set, is the master set name: Addrs are Sentinels and
	// the client follows the primary they name (+switch-master, and a
	// reconciliation every second).
	Sentinel string
	// SentinelUser and SentinelPassword log in to the Sentinels (the
	// password never printed); TLS applies to them too.
	SentinelUser, SentinelPassword string
	// User and Password log in (Password never printed).
	User, Password string
	// TLS, when set, is the client TLS configuration.
	TLS *tls.Config
	// Wait, when > 0, sends WAIT Wait after each write, on the connection
	// of the write (with Cluster: a dedicated connection to the key's
	// node), and counts the write acknowledged only when that many
	// replicas have it.
	Wait int
	// Duration and Ops end the run (whichever first; zero = unbounded,
	// then only ctx ends it).
	Duration time.Duration
	Ops      int64
	// Workers writing in parallel (default 8).
	Workers int
	// KeysPerSlot is how many keys each hash slot holds (default 1).
	KeysPerSlot int
	// Prefix of every key (default "loadgen").
	Prefix string
	// OpTimeout bounds one operation (default 5 s).
	OpTimeout time.Duration
	// Rate caps the write-and-read-back pairs per second over all workers
	// (0: as fast as the server answers). A capped client leaves the
	// servers room for the change under test, as real traffic would.
	Rate int
	// Refresh, with Cluster, re-reads the slot map this often besides on
	// redirections (valkey-go's ShardsRefreshInterval; 0: never). Without
	// it a worker that has not touched a moved primary's slots since the
	// move still routes them to the old node, and a write sent while that
	// node restarts fails with a refused connection (valkey-go retries
	// only read-only commands on its own, and no dedicated connection).
	Refresh time.Duration
}

// Report is the result of a run.
type Report struct {
	Mode          string           `json:"mode"`
	Seconds       float64          `json:"seconds"`
	Keys          int              `json:"keys"`
	AckedWrites   int64            `json:"acked_writes"`
	Reads         int64            `json:"reads"`
	OpsPerSecond  float64          `json:"ops_per_second"`
	LostKeys      int              `json:"lost_keys"`
	StaleReads    int64            `json:"stale_reads"`
	Errors        map[string]int64 `json:"errors"`
	Redirections  map[string]int64 `json:"redirections"`
	LongestOutage float64          `json:"longest_unavailable_ms"`
	// Outages are the longest windows (at most MaxOutages, each at least
	// MinOutage) in which a worker could not write, longest first: when
	// each began lets a test tell which step of a roll caused it.
	Outages []Outage `json:"outages"`
	Latency Latency  `json:"latency_ms"`
}

// Outage is one window in which a worker's writes failed, from its first
// failure to its next success.
type Outage struct {
	Start  time.Time `json:"start"`
	Ms     float64   `json:"ms"`
	Worker int       `json:"worker"`
	// Kind of the error that began it.
	Kind string `json:"kind"`
	// Error is that first error's text (an address, a server reply: which
	// node failed, and how), Failures how many writes failed in it.
	Error    string `json:"error"`
	Failures int    `json:"failures"`
}

// Outages kept in a report: the MaxOutages longest of each kind, each of
// at least MinOutage (so that the long windows of an allowed kind, such as
// a restarting replica's, never hide a short one of another kind).
const (
	MaxOutages = 20
	MinOutage  = 50 * time.Millisecond
)

// Latency percentiles of one write-and-read-back, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Error kinds. Redirection-class kinds are what a client may see while
// slots move; every other kind means the service failed the client.
const (
	KindMoved       = "MOVED"
	KindAsk         = "ASK"
	KindTryAgain    = "TRYAGAIN"
	KindClusterDown = "CLUSTERDOWN"
	// KindUnreplicated: the primary applied the write but WAIT returned
	// before a replica had it: not acknowledged (the client is told so),
	// and not lost if it is there at the end. A shard whose only replica
	// restarts answers so for the length of the restart.
	KindUnreplicated = "unreplicated"
	KindTimeout      = "timeout"
	KindConnection   = "connection"
	KindOther        = "other"
)

// RedirectionKinds are the errors slot moves are allowed to cause.
var RedirectionKinds = map[string]bool{KindMoved: true, KindAsk: true, KindTryAgain: true}

// Classify names the kind of an error.
func Classify(err error) string {
	if errors.Is(err, errUnreplicated) {
		return KindUnreplicated
	}
	var verr *valkey.ValkeyError
	if errors.As(err, &verr) {
		msg := verr.Error()
		// A WAIT the server ended because the node stopped being a
		// primary (a failover): the write is not acknowledged.
		if strings.HasPrefix(msg, "UNBLOCKED") {
			return KindUnreplicated
		}
		for _, k := range []string{KindMoved, KindAsk, KindTryAgain, KindClusterDown} {
			if strings.HasPrefix(msg, k) {
				return k
			}
		}
		return KindOther
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
		return KindTimeout
	}
	if err != nil {
		return KindConnection
	}
	return ""
}

// errUnreplicated wraps a WAIT that returned fewer replicas than asked.
var errUnreplicated = errors.New("not acknowledged by enough replicas")

// maxHops bounds the redirections one write follows.
const maxHops = 3

// Gen is a running load generator.
type Gen struct {
	cfg    Config
	client valkey.Client
	keys   []string
	last   []atomic.Int64 // last acknowledged value per key (0: none)
	// pending is the value of the write in flight per key: a write that
	// failed on the client may still have been applied, so the key may
	// hold it without anything being lost.
	pending []atomic.Int64

	acked, reads, stale atomic.Int64
	mu                  sync.Mutex
	errs                map[string]int64
	lat                 []time.Duration
	outage              time.Duration
	outages             []Outage
	followed            map[string]int64 // redirections the write path followed itself
	statsBefore         map[string]map[string]int64
}

// New connects and builds the key set (KeysPerSlot keys in each of the
// 16384 slots).
func New(cfg Config) (*Gen, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.KeysPerSlot <= 0 {
		cfg.KeysPerSlot = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "loadgen"
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	opt := valkey.ClientOption{
		InitAddress: cfg.Addrs, Username: cfg.User, Password: cfg.Password, TLSConfig: cfg.TLS,
		DisableCache: true, ForceSingleClient: !cfg.Cluster && cfg.Sentinel == "", ConnWriteTimeout: cfg.OpTimeout,
	}
	if cfg.Cluster {
		opt.ClusterOption = valkey.ClusterOption{ShardsRefreshInterval: cfg.Refresh}
	}
	if cfg.Sentinel != "" {
		opt.Sentinel = valkey.SentinelOption{MasterSet: cfg.Sentinel, Username: cfg.SentinelUser, Password: cfg.SentinelPassword,
			TLSConfig: cfg.TLS, TopologyRefreshInterval: time.Second}
	}
	c, err := valkey.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	g := &Gen{cfg: cfg, client: c, errs: map[string]int64{}, followed: map[string]int64{}}
	tags := SlotTags()
	for s := 0; s < len(tags); s++ {
		for i := 0; i < cfg.KeysPerSlot; i++ {
			g.keys = append(g.keys, fmt.Sprintf("%s:{%s}:%d", cfg.Prefix, tags[s], i))
		}
	}
	g.last = make([]atomic.Int64, len(g.keys))
	g.pending = make([]atomic.Int64, len(g.keys))
	return g, nil
}

// Close ends the connections.
func (g *Gen) Close() { g.client.Close() }

// Acked is the number of acknowledged writes so far (live).
func (g *Gen) Acked() int64 { return g.acked.Load() }

// Errors is the number of failed operations so far (live).
func (g *Gen) Errors() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, v := range g.errs {
		n += v
	}
	return n
}

// Run writes and reads back until ctx ends, Duration passes or Ops writes
// are acknowledged, then checks every key and reports.
func (g *Gen) Run(ctx context.Context) (*Report, error) {
	if g.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.Duration)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g.statsBefore = g.errorStats()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < g.cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			g.worker(ctx, w, stop)
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep := &Report{Mode: "standalone", Seconds: elapsed.Seconds(), Keys: len(g.keys), AckedWrites: g.acked.Load(),
		Reads: g.reads.Load(), StaleReads: g.stale.Load(), Errors: map[string]int64{}}
	if g.cfg.Cluster {
		rep.Mode = "cluster"
	} else if g.cfg.Sentinel != "" {
		rep.Mode = "sentinel"
	}
	rep.OpsPerSecond = float64(rep.AckedWrites+rep.Reads) / elapsed.Seconds()
	lost, err := g.verify()
	if err != nil {
		return nil, err
	}
	rep.LostKeys = lost
	g.mu.Lock()
	for k, v := range g.errs {
		rep.Errors[k] = v
	}
	rep.LongestOutage = ms(g.outage)
	rep.Outages = append([]Outage{}, g.outages...)
	rep.Latency = percentiles(g.lat)
	g.mu.Unlock()
	rep.Redirections = g.redirections()
	return rep, nil
}

// worker w owns the keys i with i % Workers == w: their last acknowledged
// value is its own to know.
func (g *Gen) worker(ctx context.Context, w int, stop context.CancelFunc) {
	var down time.Time // first failure of the current outage
	var downKind, downErr string
	var failures int
	var lat []time.Duration
	defer func() {
		// An outage still open when the run ends counts up to the end.
		if !down.IsZero() {
			g.noteOutage(Outage{Start: down, Ms: ms(time.Since(down)), Worker: w, Kind: downKind, Error: downErr, Failures: failures})
		}
		g.mu.Lock()
		g.lat = append(g.lat, lat...)
		g.mu.Unlock()
	}()
	var pace <-chan time.Time
	if g.cfg.Rate > 0 {
		tick := time.NewTicker(time.Second * time.Duration(g.cfg.Workers) / time.Duration(g.cfg.Rate))
		defer tick.Stop()
		pace = tick.C
	}
	for n := int64(1); ; n++ {
		for i := w; i < len(g.keys); i += g.cfg.Workers {
			if ctx.Err() != nil {
				return
			}
			if pace != nil {
				select {
				case <-pace:
				case <-ctx.Done():
					return
				}
			}
			t0 := time.Now()
			val := n<<8 | int64(w)
			g.pending[i].Store(val)
			err := g.write(ctx, g.keys[i], val)
			if err == nil {
				g.last[i].Store(val)
				if g.acked.Add(1) >= g.cfg.Ops && g.cfg.Ops > 0 {
					stop()
				}
				err = g.readBack(ctx, g.keys[i], val)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				kind := g.fail(err)
				if down.IsZero() {
					down, downKind, downErr, failures = t0, kind, err.Error(), 0
				}
				failures++
				continue
			}
			if !down.IsZero() {
				g.noteOutage(Outage{Start: down, Ms: ms(time.Since(down)), Worker: w, Kind: downKind, Error: downErr, Failures: failures})
				down = time.Time{}
			}
			if len(lat) < 1<<20 {
				lat = append(lat, time.Since(t0))
			}
		}
	}
}

func (g *Gen) write(ctx context.Context, key string, val int64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.OpTimeout)
	defer cancel()
	c := g.client
	if g.cfg.Wait == 0 {
		return c.Do(ctx, c.B().Set().Key(key).Value(strconv.FormatInt(val, 10)).Build()).Error()
	}
	// WAIT returns before the operation times out, so that a write no
	// replica took is told apart from a server that does not answer.
	waitTimeout := max(g.cfg.OpTimeout*4/5, time.Millisecond)
	build := func(asking bool) valkey.Commands {
		cmds := valkey.Commands{c.B().Set().Key(key).Value(strconv.FormatInt(val, 10)).Build(),
			c.B().Wait().Numreplicas(int64(g.cfg.Wait)).Timeout(waitTimeout.Milliseconds()).Build()}
		if asking {
			cmds = append(valkey.Commands{c.B().Asking().Build()}, cmds...)
		}
		return cmds
	}
	var r []valkey.ValkeyResult
	if !g.cfg.Cluster {
		r = c.DoMulti(ctx, build(false)...)
	} else {
		// WAIT has no key: on the cluster client it would go to any node.
		// A dedicated connection is bound to the node of the SET's slot;
		// the dedicated client does not follow a MOVED or ASK for a write
		// (a client library may not resend it), so this one does, as a
		// cluster-aware application would: to the node the reply names,
		// at most maxHops times, counted apart from errors.
		target, asking := valkey.Client(c), false
		for hop := 0; ; hop++ {
			_ = target.Dedicated(func(d valkey.DedicatedClient) error {
				r = d.DoMulti(ctx, build(asking)...)
				return nil
			})
			if asking {
				r = r[1:]
			}
			var verr *valkey.ValkeyError
			if hop == maxHops || !errors.As(r[0].Error(), &verr) {
				break
			}
			addr, moved := verr.IsMoved()
			if asking = false; !moved {
				if addr, asking = verr.IsAsk(); !asking {
					break
				}
			}
			node, ok := c.Nodes()[addr]
			if !ok {
				// A node the client does not write to yet (a replica just
				// promoted): a read through the cluster client follows the
				// redirection and connects to it.
				_ = c.Do(ctx, c.B().Get().Key(key).Build()).Error()
				if node, ok = c.Nodes()[addr]; !ok {
					break
				}
			}
			g.mu.Lock()
			g.followed[Classify(verr)]++
			g.mu.Unlock()
			target = node
		}
	}
	if err := r[0].Error(); err != nil {
		return err
	}
	got, err := r[1].AsInt64()
	if err != nil {
		return err
	}
	if got < int64(g.cfg.Wait) {
		return fmt.Errorf("WAIT %d: %d replicas acknowledged: %w", g.cfg.Wait, got, errUnreplicated)
	}
	return nil
}

func (g *Gen) readBack(ctx context.Context, key string, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.OpTimeout)
	defer cancel()
	got, err := g.client.Do(ctx, g.client.B().Get().Key(key).Build()).AsInt64()
	if err != nil {
		return err
	}
	g.reads.Add(1)
	if got != want {
		g.stale.Add(1)
	}
	return nil
}

func (g *Gen) fail(err error) string {
	kind := Classify(err)
	g.mu.Lock()
	g.errs[kind]++
	g.mu.Unlock()
	return kind
}

// noteOutage keeps the longest window and, of each kind, the MaxOutages
// longest of at least MinOutage; the report lists them longest first.
func (g *Gen) noteOutage(o Outage) {
	d := time.Duration(o.Ms * float64(time.Millisecond))
	g.mu.Lock()
	defer g.mu.Unlock()
	if d > g.outage {
		g.outage = d
	}
	if d < MinOutage {
		return
	}
	g.outages = append(g.outages, o)
	sort.SliceStable(g.outages, func(a, b int) bool { return g.outages[a].Ms > g.outages[b].Ms })
	kept, seen := g.outages[:0], map[string]int{}
	for _, x := range g.outages {
		if seen[x.Kind] < MaxOutages {
			seen[x.Kind]++
			kept = append(kept, x)
		}
	}
	g.outages = kept
}

// fillValue is what Fill writes (workers write n<<8|w with n >= 1).
const fillValue = 0xff

// Fill writes every key once, pipelined, before a run: every slot then
// holds keys from the start, and Run measures only the paced traffic.
func (g *Gen) Fill(ctx context.Context) error {
	const batch = 512
	for start := 0; start < len(g.keys); start += batch {
		end := min(start+batch, len(g.keys))
		cmds := make(valkey.Commands, 0, end-start)
		for _, k := range g.keys[start:end] {
			cmds = append(cmds, g.client.B().Set().Key(k).Value(strconv.Itoa(fillValue)).Build())
		}
		for i, r := range g.client.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("failed to fill %s: %w", g.keys[start+i], err)
			}
			g.last[start+i].Store(fillValue)
		}
	}
	return nil
}

// verify reads every key: a key whose value is neither its last
// acknowledged one nor the one of a write in flight when the run ended is
// lost (an older value, or none).
func (g *Gen) verify() (int, error) {
	lost := 0
	const batch = 512
	for start := 0; start < len(g.keys); start += batch {
		end := min(start+batch, len(g.keys))
		cmds := make(valkey.Commands, 0, end-start)
		for _, k := range g.keys[start:end] {
			cmds = append(cmds, g.client.B().Get().Key(k).Build())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res := g.client.DoMulti(ctx, cmds...)
		cancel()
		for i, r := range res {
			want := g.last[start+i].Load()
			got, err := r.AsInt64()
			if valkey.IsValkeyNil(err) {
				if want != 0 {
					lost++
				}
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("failed to read back %s: %w", g.keys[start+i], err)
			}
			if got != want && got != g.pending[start+i].Load() {
				lost++
			}
		}
	}
	return lost, nil
}

// errorStats reads INFO errorstats of every node the client knows.
func (g *Gen) errorStats() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for addr, c := range g.client.Nodes() {
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.OpTimeout)
		text, err := c.Do(ctx, c.B().Info().Section("errorstats").Build()).ToString()
		cancel()
		if err != nil {
			continue
		}
		stats := map[string]int64{}
		for _, line := range strings.Split(strings.TrimPrefix(text, "txt:"), "\n") {
			// errorstat_MOVED:count=12
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":count=")
			if !ok || !strings.HasPrefix(name, "errorstat_") {
				continue
			}
			n, _ := strconv.ParseInt(rest, 10, 64)
			stats[strings.TrimPrefix(name, "errorstat_")] = n
		}
		out[addr] = stats
	}
	return out
}

// redirections are the MOVED, ASK and TRYAGAIN replies the servers sent
// during the run (INFO errorstats; valkey-go follows them, so the
// application never sees them).
func (g *Gen) redirections() map[string]int64 {
	after := g.errorStats()
	out := map[string]int64{KindMoved: 0, KindAsk: 0, KindTryAgain: 0}
	for addr, stats := range after {
		for k := range out {
			out[k] += stats[k] - g.statsBefore[addr][k]
		}
	}
	// A node that restarted during the run counts from zero again: the
	// redirections the write path followed itself are the floor.
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, n := range g.followed {
		out[k] = max(out[k], n)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentiles(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	at := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(lat[len(lat)-1])}
}

// SlotTags returns, for each of the 16384 slots, a short string that
// hashes to it: "{tag}" in a key puts the key in that slot.
func SlotTags() []string {
	tags := make([]string, 16384)
	found := 0
	for i := 0; found < len(tags); i++ {
		s := strconv.Itoa(i)
		if slot := KeySlot(s); tags[slot] == "" {
			tags[slot] = s
			found++
		}
	}
	return tags
}

// KeySlot is the hash slot of a key (CRC16-CCITT/XMODEM of the key, or of
// its {hash tag}, modulo 16384), as the cluster computes it.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
