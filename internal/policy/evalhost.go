package policy

import (
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"
)

func isWord(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// isLoopback: a loopback address (127.0.0.0/8, ::1) or localhost. Anything
// else, "*" and names included, may be reached from the network.
func isLoopback(addr string) bool {
	if strings.EqualFold(addr, "localhost") {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// weakCiphers returns the entries of an OpenSSL cipher list (or TLS 1.3
// ciphersuite list) that enable a cipher with one of the forbidden words as a
// part: "DES-CBC3-SHA" has the parts DES, CBC3, SHA; TLS_AES_128_CCM_8_SHA256
// has CCM_8 (a word may span parts). "!RC4" and "-RC4" remove ciphers and
// are not reported; "+X" moves them and is.
func weakCiphers(list string, forbidden []string) []string {
	var out []string
	for _, entry := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		if strings.HasPrefix(entry, "!") || strings.HasPrefix(entry, "-") {
			continue
		}
		norm := "_" + strings.ReplaceAll(strings.ToUpper(strings.TrimPrefix(entry, "+")), "-", "_") + "_"
		// "A+B" is the intersection of A and B: weak when either part is.
		norm = strings.ReplaceAll(norm, "+", "_")
		for _, w := range forbidden {
			if strings.Contains(norm, "_"+strings.ReplaceAll(strings.ToUpper(w), "-", "_")+"_") {
				out = append(out, entry)
				break
			}
		}
	}
	return out
}

// unlimitedClasses returns the classes of a client-output-buffer-limit value
// ("class hard soft seconds" ...) that have neither a hard nor a soft limit.
// A class the value does not name keeps the server's default, which limits
// replica and pubsub clients and not normal ones.
func unlimitedClasses(args []string, want []string) []string {
	words := strings.Fields(strings.Join(args, " "))
	limited := map[string]bool{"replica": true, "pubsub": true, "normal": false}
	for i := 0; i+3 < len(words); i += 4 {
		class := strings.ToLower(words[i])
		if class == "slave" {
			class = "replica"
		}
		limited[class] = nonZero(words[i+1]) || nonZero(words[i+2])
	}
	var out []string
	for _, c := range want {
		if !limited[c] {
			out = append(out, c)
		}
	}
	return out
}

func nonZero(s string) bool {
	s = strings.TrimRight(strings.ToLower(s), "kmgb")
	n, ok := new(big.Int).SetString(s, 10)
	return !ok || n.Sign() != 0
}

func (e *evaluator) host(h *HostPredicate) (Status, string) {
	if !e.f.Host {
		return Skip, "needs the target host (kernel settings and the service are not checked by lint)"
	}
	switch {
	case h.Sandbox != nil:
		s := e.f.Sandbox
		switch {
		case s == nil:
			return Skip, "the service was not inspected"
		case !s.Systemd:
			return Skip, "not applicable: the host does not run systemd (no unit to sandbox)"
		case !s.Found:
			return Fail, fmt.Sprintf("the unit %s has no sandbox drop-in: %s", s.Unit, s.Problem)
		}
		return Pass, ""
	case h.THP != nil:
		mode, why := e.kernel("transparent_hugepage")
		if mode == "" {
			return Skip, why
		}
		if contains(h.THP, mode) {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("transparent huge pages are %q on the host; expected %s", mode, strings.Join(h.THP, " or "))
	}
	got, why := e.kernel(h.Sysctl)
	if got == "" {
		return Skip, why
	}
	if h.Equals != "" {
		if got == h.Equals {
			return Pass, ""
		}
		return Fail, fmt.Sprintf("%s is %s; expected %s", h.Sysctl, got, h.Equals)
	}
	v, why := e.lookup(h.atLeast)
	if v == nil {
		return Skip, why
	}
	n, err1 := strconv.ParseInt(got, 10, 64)
	m, err2 := strconv.ParseInt(v.v.Canonical, 10, 64)
	if err1 != nil || err2 != nil {
		return Skip, fmt.Sprintf("%s is %q and %s %q: not numbers", h.Sysctl, got, h.atLeast.Name, v.v.Set)
	}
	if n >= m {
		return Pass, ""
	}
	return Fail, fmt.Sprintf("%s is %d, below %s %d: the kernel silently cuts the accept queue to %d", h.Sysctl, n, h.atLeast.Name, m, n)
}

// kernel returns a kernel setting the audit read, or "" and why not.
func (e *evaluator) kernel(name string) (string, string) {
	k := e.f.Kernel
	if k == nil {
		return "", "the host's kernel settings were not read"
	}
	if v, ok := k.Values[name]; ok {
		return v, ""
	}
	if why := k.Errors[name]; why != "" {
		return "", fmt.Sprintf("cannot read %s: %s", name, why)
	}
	return "", name + " was not read"
}

func (e *evaluator) persistence(pp *PersistencePredicate) (Status, string) {
	p := e.f.Persistence
	if p == nil {
		return Skip, "needs the running server (INFO persistence)"
	}
	if pp.LastBGSaveOK != nil {
		var bad []string
		if s := p["rdb_last_bgsave_status"]; s != "" && s != "ok" {
			bad = append(bad, "the last RDB save (BGSAVE) failed")
		}
		if p["aof_enabled"] == "1" {
			if s := p["aof_last_bgrewrite_status"]; s != "" && s != "ok" {
				bad = append(bad, "the last AOF rewrite failed")
			}
			if s := p["aof_last_write_status"]; s != "" && s != "ok" {
				bad = append(bad, "the last AOF write failed")
			}
		}
		if len(bad) == 0 {
			return Pass, ""
		}
		return Fail, strings.Join(bad, "; ") + " (see the server's log)"
	}
	if p["aof_enabled"] == "1" {
		return Skip, "not applicable: the AOF records every write"
	}
	changes, err := strconv.ParseInt(p["rdb_changes_since_last_save"], 10, 64)
	if err != nil {
		return Skip, "INFO persistence has no rdb_changes_since_last_save"
	}
	last, err := strconv.ParseInt(p["rdb_last_save_time"], 10, 64)
	if err != nil {
		return Skip, "INFO persistence has no rdb_last_save_time"
	}
	if changes == 0 {
		return Pass, ""
	}
	at := time.Unix(last, 0)
	age := e.f.Now.Sub(at)
	if age <= time.Duration(pp.MaxAgeHours)*time.Hour {
		return Pass, ""
	}
	return Fail, fmt.Sprintf("%d %s since the last successful save at %s (%d hours ago; expected at most %d)",
		changes, plural(int(changes), "change", "changes"), at.UTC().Format(time.RFC3339), int(age.Hours()), pp.MaxAgeHours)
}
