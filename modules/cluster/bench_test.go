package cluster

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/valkeyops/secure/internal/loadgen"
	"github.com/valkeyops/secure/internal/testserver"
)

// BenchOutEnv names the file TestBenchSlotMove writes its measurements to
// (bench/cluster_move.py sets it; without it the benchmark is skipped, so
// it is never part of make test).
const BenchOutEnv = "VALKEYOPS_BENCH_CLUSTER_OUT"

// SlotMoveResult is one benchmark run.
type SlotMoveResult struct {
	KeysPerSlot  int     `json:"keys_per_slot"`
	Rate         int     `json:"client_rate"`
	SlotsMoved   int     `json:"slots_moved"`
	KeysMoved    int     `json:"keys_moved"`
	IdleSeconds  float64 `json:"move_seconds_idle"`
	BusySeconds  float64 `json:"move_seconds_under_traffic"`
	SlotsPerSec  float64 `json:"slots_per_second_under_traffic"`
	KeysPerSec   float64 `json:"keys_per_second_under_traffic"`
	SlotsPerSecI float64 `json:"slots_per_second_idle"`
	// Client latency with no move (idle) and during the move.
	Idle   *loadgen.Report `json:"client_without_move"`
	During *loadgen.Report `json:"client_during_move"`
}

// TestBenchSlotMove measures a grow from 6 to 8 nodes (4096 slots to the
// new primary): once with no client, once with a capped client writing and
// reading back keys in every slot, and the client's latency with no move
// for the ratio.
func TestBenchSlotMove(t *testing.T) {
	out := os.Getenv(BenchOutEnv)
	if out == "" {
		t.Skip(BenchOutEnv + " is not set (bench/cluster_move.py runs this)")
	}
	const keysPerSlot = 4
	res := SlotMoveResult{KeysPerSlot: keysPerSlot, Rate: trafficRate}

	// Idle: no client, empty slots.
	nodes := testserver.StartCluster(t, 6)
	extra := []*testserver.ClusterNode{testserver.StartClusterNode(t, "127.0.0.1"), testserver.StartClusterNode(t, "127.0.0.2")}
	mod.CallOK(t, task(nodes, nil))
	t0 := time.Now()
	_, f := mod.CallOK(t, task(append(append([]*testserver.ClusterNode{}, nodes...), extra...), nil))
	res.IdleSeconds = time.Since(t0).Seconds()

	// Under traffic, on a fresh cluster whose slots hold keys.
	nodes = testserver.StartCluster(t, 6)
	extra = []*testserver.ClusterNode{testserver.StartClusterNode(t, "127.0.0.1"), testserver.StartClusterNode(t, "127.0.0.2")}
	mod.CallOK(t, task(nodes, nil))
	addrs := []string{nodes[0].Addr}
	cfg := loadgen.Config{Addrs: addrs, Cluster: true, Workers: 8, KeysPerSlot: keysPerSlot, Rate: trafficRate, Duration: 20 * time.Second}
	idle, err := loadgen.New(cfg)
	require.NoError(t, err)
	require.NoError(t, idle.Fill(context.Background()))
	res.Idle, err = idle.Run(context.Background())
	require.NoError(t, err)
	idle.Close()

	cfg.Duration = 0
	busy, err := loadgen.New(cfg)
	require.NoError(t, err)
	defer busy.Close()
	require.NoError(t, busy.Fill(context.Background()))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); res.During, err = busy.Run(ctx) }()
	t0 = time.Now()
	_, f = mod.CallOK(t, task(append(append([]*testserver.ClusterNode{}, nodes...), extra...), nil))
	res.BusySeconds = time.Since(t0).Seconds()
	stop()
	<-done
	require.NoError(t, err)
	require.Zero(t, res.During.LostKeys)

	for _, n := range f.Nodes {
		if n.Address == extra[0].Addr {
			res.SlotsMoved = n.SlotCount
		}
	}
	res.KeysMoved = res.SlotsMoved * keysPerSlot
	res.SlotsPerSec = float64(res.SlotsMoved) / res.BusySeconds
	res.KeysPerSec = float64(res.KeysMoved) / res.BusySeconds
	res.SlotsPerSecI = float64(res.SlotsMoved) / res.IdleSeconds
	b, err := json.MarshalIndent(res, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644))
	t.Logf("%s", b)
}
