// Command loadgen drives a client workload against a Valkey server or
// cluster and prints a JSON report (internal/loadgen): acknowledged writes,
// keys lost, errors by kind, redirections, the longest unavailability
// window and latency percentiles. For tests and benchmarks of topology
// changes: run it while slots move, a primary fails over or nodes restart.
//
//	go run ./bench/loadgen -cluster -addr 10.0.0.1:6379 -duration 60s
//	VALKEY_PASSWORD=... go run ./bench/loadgen -addr 127.0.0.1:6379 -user app -wait 1 -ops 100000
//	go run ./bench/loadgen -sentinel main -addr 10.0.0.1:26379,10.0.0.2:26379 -wait 1 -duration 60s
//
// The passwords are read from VALKEY_PASSWORD and VALKEY_SENTINEL_PASSWORD,
// never from the command line.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/loadgen"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg loadgen.Config
	addrs := flag.String("addr", "127.0.0.1:6379", "server address(es), comma-separated (seed nodes with -cluster)")
	flag.BoolVar(&cfg.Cluster, "cluster", false, "use the cluster client (follows MOVED/ASK)")
	flag.StringVar(&cfg.User, "user", "", "ACL user (password from VALKEY_PASSWORD)")
	flag.StringVar(&cfg.Sentinel, "sentinel", "", "master set name: -addr are Sentinels, the client follows the primary they name")
	flag.StringVar(&cfg.SentinelUser, "sentinel-user", "", "ACL user on the Sentinels (password from VALKEY_SENTINEL_PASSWORD)")
	flag.IntVar(&cfg.Wait, "wait", 0, "WAIT for this many replicas after each write")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run (0: until -ops or Ctrl-C)")
	flag.Int64Var(&cfg.Ops, "ops", 0, "stop after this many acknowledged writes (0: no limit)")
	flag.IntVar(&cfg.Workers, "workers", 8, "parallel workers")
	flag.IntVar(&cfg.KeysPerSlot, "keys-per-slot", 1, "keys in each of the 16384 hash slots")
	flag.StringVar(&cfg.Prefix, "prefix", "loadgen", "key prefix")
	flag.IntVar(&cfg.Rate, "rate", 0, "cap on write-and-read-back pairs per second (0: no cap)")
	flag.DurationVar(&cfg.Refresh, "refresh", 0, "with -cluster: re-read the slot map this often, besides on redirections (0: never)")
	tlsOn := flag.Bool("tls", false, "connect with TLS")
	caFile := flag.String("cacert", "", "CA bundle to verify the servers with (with -tls)")
	sni := flag.String("sni", "", "server name to verify (with -tls)")
	flag.Parse()
	cfg.Addrs = strings.Split(*addrs, ",")
	cfg.Password = os.Getenv("VALKEY_PASSWORD")
	cfg.SentinelPassword = os.Getenv("VALKEY_SENTINEL_PASSWORD")
	if *tlsOn {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *sni}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
				return 2
			}
			cfg.TLS.RootCAs = x509.NewCertPool()
			if !cfg.TLS.RootCAs.AppendCertsFromPEM(pem) {
				fmt.Fprintf(os.Stderr, "loadgen: %s holds no PEM certificate\n", *caFile)
				return 2
			}
		}
	}
	g, err := loadgen.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		return 1
	}
	defer g.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := g.Run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return 1
	}
	if rep.LostKeys > 0 {
		return 3
	}
	return 0
}
