package gate

import "strings"

// DefaultSecretHeaders are header names whose values never leave tapgate:
// not in reports, logs, recordings, annotations or summaries.
var DefaultSecretHeaders = []string{
	"authorization",
	"proxy-authorization",
	"cookie",
	"set-cookie",
	"x-api-key",
	"x-auth-token",
	"x-access-token",
	"x-csrf-token",
	"x-xsrf-token",
	"x-amz-security-token",
	"x-goog-iap-jwt-assertion",
	"x-forwarded-client-cert",
	"l5d-client-id",
}

// Redacted is what a secret header value is replaced with.
const Redacted = "[REDACTED]"

// Redactor decides which header values are secret.
type Redactor struct {
	names    map[string]bool
	Disabled bool // only set by an explicit, loudly named user flag
}

// NewRedactor builds a redactor from the default list plus extra names.
func NewRedactor(extra ...string) *Redactor {
	r := &Redactor{names: make(map[string]bool, len(DefaultSecretHeaders)+len(extra))}
	for _, n := range DefaultSecretHeaders {
		r.names[n] = true
	}
	for _, n := range extra {
		r.names[strings.ToLower(strings.TrimSpace(n))] = true
	}
	return r
}

// IsSecret reports whether the header's value must be hidden. Names that
// look like credentials (containing "token", "secret", "password",
// "api-key", "session") are secret too.
func (r *Redactor) IsSecret(name string) bool {
	if r != nil && r.Disabled {
		return false
	}
	n := strings.ToLower(name)
	if r != nil && r.names[n] {
		return true
	}
	if r == nil {
		for _, d := range DefaultSecretHeaders {
			if d == n {
				return true
			}
		}
	}
	for _, frag := range []string{"token", "secret", "password", "passwd", "api-key", "apikey", "session", "credential"} {
		if strings.Contains(n, frag) {
			return true
		}
	}
	return false
}

// Redact replaces secret values in place.
func (r *Redactor) Redact(hs []Header) {
	for i := range hs {
		if r.IsSecret(hs[i].Name) {
			hs[i].Value = Redacted
		}
	}
}
