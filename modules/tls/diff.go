package tls

import (
	"fmt"
	"strings"

	"github.com/valkeyops/secure/internal/ansible"
	"github.com/valkeyops/secure/internal/x509check"
)

// materialDiff shows fingerprints and paths, never key material.
func (r *run) materialDiff(servedBefore string, reload bool) []ansible.DiffEntry {
	var before, after []string
	for _, f := range r.mat.files() {
		if !f.changed() {
			continue
		}
		switch {
		case f.role == "key":
			if f.exists {
				before = append(before, fmt.Sprintf("key %s %04o (old content hidden)", f.path, f.oldMode))
			}
			after = append(after, fmt.Sprintf("key %s %04o (new content hidden)", f.path, f.mode))
		default:
			if f.exists {
				before = append(before, fmt.Sprintf("%s %s %04o sha256 %s", f.role, f.path, f.oldMode, pemFingerprint(f.old)))
			}
			after = append(after, fmt.Sprintf("%s %s %04o sha256 %s", f.role, f.path, f.mode, pemFingerprint(f.data)))
		}
	}
	if reload {
		where := fmt.Sprintf("%s:%d", r.handshakeHost(), r.fields.TLSPort)
		if servedBefore == "" {
			before = append(before, "served (none)")
		} else {
			before = append(before, "served sha256 "+servedBefore)
		}
		after = append(after, fmt.Sprintf("served %s sha256 %s", where, r.check.Info.SHA256Fingerprint))
	}
	if len(before)+len(after) == 0 {
		return nil
	}
	return []ansible.DiffEntry{{BeforeHeader: "TLS material", AfterHeader: "TLS material", Before: joinLines(before), After: joinLines(after)}}
}

func joinLines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

// pemFingerprint is the fingerprint of the first certificate of a PEM
// file, or a note when there is none.
func pemFingerprint(data []byte) string {
	certs, err := x509check.ParseCerts(data, "")
	if err != nil {
		return "(not a certificate)"
	}
	return x509check.Fingerprint(certs[0].Raw)
}
