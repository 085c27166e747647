package x509check

import "crypto/x509"

// KeyWeakness returns why a public key is too weak for a TLS server ("a
// 1024-bit RSA key; at least 2048 bits are required"), or "" when it is
// strong enough: the rule valkey_tls applies at deploy time, which the audit
// applies to what is installed.
func KeyWeakness(pub any) string { return weakKey(pub) }

// WeakSignature reports a signature algorithm over a broken hash (SHA-1, MD5, MD2).
func WeakSignature(a x509.SignatureAlgorithm) bool { return weakSignature(a) }
