package ansible

import (
	"encoding/json"
	"fmt"
	"io"
)

// Mask is what a secret prints as, everywhere.
const Mask = "********"

// Secret holds a value that must never be printed: a password, a hash, key
// material. Every way Go has of turning it into text (fmt verbs, String,
// JSON) yields Mask, so a Secret that reaches a message, a diff or a result
// by mistake is masked by its type rather than by somebody remembering to.
// Reveal is the one way to read it, and is meant for the wire to the server.
type Secret string

// Reveal returns the plain value. Call it only where the value goes to the
// server or to a hash function, never into text meant for people.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) String() string   { return Mask }
func (s Secret) GoString() string { return Mask }

// Format makes every fmt verb (%s %v %q %x %#v …) print the mask.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Mask) }

// MarshalJSON masks the value in any JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Mask) }

// UnmarshalJSON accepts a JSON string; the error never quotes the input.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errNotString
	}
	*s = Secret(v)
	return nil
}
