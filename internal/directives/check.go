package directives

import (
	"net/netip"
	"strings"
)

// The is_valid functions of Valkey's config table (config.c), for string
// directives: each returns "" for a value the server takes, else the
// server's own reason. The server refuses to start with a value that fails.

// baseName: dbfilename, appendfilename, appenddirname (isValidDBfilename,
// isValidAOFfilename, isValidAOFdirname: not empty, no / or \).
func baseName(what string) func(string) string {
	return func(v string) string {
		switch {
		case v == "":
			return what + " can't be empty"
		case strings.ContainsAny(v, `/\`):
			return what + " can't be a path, just a " + map[bool]string{true: "dirname", false: "filename"}[what == "appenddirname"]
		}
		return ""
	}
}

func notEmpty(what string) func(string) string {
	return func(v string) string {
		if v == "" {
			return what + " can't be empty"
		}
		return ""
	}
}

// ipAddr: "" or an address inet_pton takes for the family (no zone, no
// leading zeros, IPv4-mapped IPv6 allowed as IPv6).
func ipAddr(v6 bool) func(string) string {
	return func(v string) string {
		if v == "" {
			return ""
		}
		a, err := netip.ParseAddr(v)
		switch {
		case err != nil || a.Zone() != "":
		case !v6 && a.Is4():
			return ""
		case v6 && a.Is6():
			return ""
		}
		if v6 {
			return "Invalid IPv6 address"
		}
		return "Invalid IPv4 address"
	}
}

// hostname: isValidAnnouncedHostname (shorter than NET_HOST_STR_LEN, letters,
// digits, - and . only).
func hostname(v string) string {
	if len(v) >= 256 {
		return "Hostnames must be less than 256 characters"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "Hostnames may only contain alphanumeric characters, hyphens or dots"
		}
	}
	return ""
}

// auxString: isValidAnnouncedNodename (isValidAuxChar for every byte).
func auxString(v string) string {
	if strings.ContainsAny(v, "!#$%&()*+;<>?@[]^{|}~") {
		return "Announced human node name contained invalid character"
	}
	return ""
}

// procTitleVars are the variables of proc-title-template, and whether each
// always expands to something (server.c, serverProcTitleGetVariable).
var procTitleVars = map[string]bool{
	"title": false, "listen-addr": true, "server-mode": false, "config-file": true,
	"port": true, "tls-port": true, "unixsocket": false,
}

// procTitle: validateProcTitleTemplate (sdstemplate: {name} variables, {{
// for a brace, no unknown variable, no unterminated one; and the expansion,
// spaces trimmed, is not empty).
func procTitle(v string) string {
	const bad = "template format is invalid or contains unknown variables"
	nonEmpty := false
	for p := 0; p < len(v); {
		i := strings.IndexByte(v[p:], '{')
		if i < 0 {
			nonEmpty = nonEmpty || strings.Trim(v[p:], " ") != ""
			break
		}
		nonEmpty = nonEmpty || strings.Trim(v[p:p+i], " ") != ""
		sv := p + i + 1
		if sv >= len(v) {
			return bad
		}
		if v[sv] == '{' {
			nonEmpty = true
			p = sv + 1
			continue
		}
		ev := strings.IndexByte(v[sv:], '}')
		if ev < 0 {
			return bad
		}
		always, ok := procTitleVars[v[sv:sv+ev]]
		if !ok {
			return bad
		}
		nonEmpty = nonEmpty || always
		p = sv + ev + 1
	}
	if !nonEmpty {
		return bad
	}
	return ""
}
