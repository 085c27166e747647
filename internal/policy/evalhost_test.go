package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWeakCipherLists(t *testing.T) {
	words := []string{"NULL", "aNULL", "RC4", "DES", "3DES", "EXPORT", "CCM_8", "MD5"}
	for list, want := range map[string][]string{
		"":                                    nil,
		"HIGH:!aNULL:!MD5:!RC4":               nil,
		"ECDHE-RSA-AES128-GCM-SHA256":         nil,
		"DES-CBC3-SHA":                        {"DES-CBC3-SHA"},
		"ECDHE-RSA-DES-CBC3-SHA,RC4-MD5":      {"ECDHE-RSA-DES-CBC3-SHA", "RC4-MD5"},
		"HIGH +3DES":                          {"+3DES"},
		"TLS_AES_128_CCM_8_SHA256":            {"TLS_AES_128_CCM_8_SHA256"},
		"TLS_AES_128_CCM_SHA256":              nil,
		"kRSA+aNULL":                          {"kRSA+aNULL"},
		"-RC4:ECDHE-ECDSA-CHACHA20-POLY1305":  nil,
		"EXP-RC4-MD5":                         {"EXP-RC4-MD5"},
		"ECDHE-ECDSA-AES256-SHA384:DESCRIBED": nil,
	} {
		assert.Equal(t, want, weakCiphers(list, words), list)
	}
}
