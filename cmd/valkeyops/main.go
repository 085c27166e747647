// Command valkeyops is the one binary of the valkeyops.secure collection.
// Every Ansible module is a subcommand (`valkeyops module valkey_config`,
// arguments as JSON on stdin); the binary also answers to a module's name
// when invoked under it (argv[0] = valkey_config, arguments file in argv[1]),
// the stock binary-module convention. It only dispatches.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/cli"
	"github.com/valkeyops/secure/internal/journal"
	"github.com/valkeyops/secure/internal/settings"
	"github.com/valkeyops/secure/internal/topology"
	"github.com/valkeyops/secure/modules/acl"
	"github.com/valkeyops/secure/modules/audit"
	"github.com/valkeyops/secure/modules/cluster"
	"github.com/valkeyops/secure/modules/config"
	"github.com/valkeyops/secure/modules/info"
	"github.com/valkeyops/secure/modules/report"
	"github.com/valkeyops/secure/modules/sentinel"
	"github.com/valkeyops/secure/modules/sentinelfailover"
	valkeytls "github.com/valkeyops/secure/modules/tls"
	"github.com/valkeyops/secure/modules/tlscsr"
	"github.com/valkeyops/secure/modules/tlssign"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// module is one Ansible module: its entry point and its options struct,
// whose spec (ansible.SpecOf) `valkeyops spec` prints for the controller.
type module struct {
	main    ansible.Handler
	options any
}

var modules = map[string]module{
	"valkey_acl":      {acl.Main, acl.Options{}},
	"valkey_config":   {config.Main, settings.Options{}},
	"valkey_audit":    {audit.Main, audit.Options{}},
	"valkey_cluster":  {cluster.Main, cluster.Options{}},
	"valkey_tls":      {valkeytls.Main, valkeytls.Options{}},
	"valkey_sentinel": {sentinel.Main, sentinel.Options{}},
	"valkey_info":     {info.Main, info.Options{}},
	"valkey_report":   {report.Main, report.Options{}},
	// The group CA flow: the node's key and CSR, the controller's signature.
	"valkey_tls_csr":  {tlscsr.Main, tlscsr.Options{}},
	"valkey_tls_sign": {tlssign.Main, tlssign.Options{}},

	// The move of a group's primary through its Sentinel, writes paused once.
	"valkey_sentinel_failover": {sentinelfailover.Main, sentinelfailover.Options{}},
}

// specDocument is what `valkeyops spec` prints: every module's interface and
// the names of the secret directives, which the action plugin loads (one
// json.load) to validate a task and mask its secrets.
type specDocument struct {
	Modules          map[string]*ansible.Spec `json:"modules"`
	SecretDirectives []string                 `json:"secret_directives"`
	// PerNodeDirectives are per node by nature (internal/topology): never
	// compared across the nodes of a group or cluster.
	PerNodeDirectives []topology.PerNode `json:"per_node_directives"`
}

func printSpec(w io.Writer) int {
	doc := specDocument{Modules: map[string]*ansible.Spec{}, SecretDirectives: ansible.SecretDirectives(), PerNodeDirectives: topology.PerNodeByNature}
	for name, m := range modules {
		doc.Modules[name] = ansible.SpecOf(m.options)
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(doc); err != nil {
		return 1
	}
	return 0
}

func main() {
	cli.Version, report.Version = version, version
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 { // possible with execve and an empty argv
		usage(stderr)
		return 2
	}
	if m, ok := modules[filepath.Base(args[0])]; ok {
		argsFile := ""
		if len(args) > 1 {
			argsFile = args[1]
		}
		return ansible.Run(filepath.Base(args[0]), m.main, stdin, argsFile, stdout)
	}
	if len(args) < 2 {
		usage(stderr)
		return 2
	}
	switch args[1] {
	case "module":
		if len(args) < 3 || len(args) > 4 {
			fmt.Fprintln(stderr, "usage: valkeyops module NAME [ARGS_FILE]  (arguments as JSON on stdin)")
			return 2
		}
		m, ok := modules[args[2]]
		if !ok {
			fmt.Fprintf(stderr, "valkeyops: unknown module %q; modules: %s\n", args[2], strings.Join(moduleNames(), ", "))
			return 2
		}
		argsFile := ""
		if len(args) == 4 {
			argsFile = args[3]
		}
		return ansible.Run(args[2], m.main, stdin, argsFile, stdout)
	case "spec":
		return printSpec(stdout)
	case "journal":
		return journal.CLI(args[2:], stdout, stderr, time.Now())
	case "lint":
		return cli.Lint(args[2:], stdout, stderr)
	case "drift":
		return cli.Drift(args[2:], stdout, stderr)
	case "report":
		return cli.Report(args[2:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "valkeyops %s\n", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "valkeyops: unknown command %q\n", args[1])
	usage(stderr)
	return 2
}

func moduleNames() []string {
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage:
  valkeyops module NAME [ARGS_FILE]   run an Ansible module (JSON arguments on stdin)
  %s
                                      print the change journal of this host
  valkeyops lint valkey.conf [...]    check a config file against the policy (no server needed)
  valkeyops drift --targets F [...]   read-only fleet scan over SSH: drift and findings
  valkeyops report --results F [...]  one HTML/JUnit/SARIF/JSON report from gathered valkey_audit results
  valkeyops spec                      print every module's options as JSON (for the action plugin)
  valkeyops version                   print the version
modules: %s
`, journal.CLIUsage, strings.Join(moduleNames(), ", "))
}
