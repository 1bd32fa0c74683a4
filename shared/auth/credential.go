package auth

import (
	"net/http"
	"strings"
)

// CredentialHeaders are the request headers a virtual key (or the master
// key) may arrive in, in the order they are consulted. The proxy removes
// every one of them from the upstream request, with or without
// forward_headers, whichever carried the key: a caller's key never reaches an
// upstream (LiteLLM issue #32202 forwards it).
var CredentialHeaders = []string{"X-Litellm-Api-Key", "Authorization", "X-Api-Key"}

// Credential returns the caller's presented secret and the header it came
// in, or "" when there is none. "Authorization: Bearer sk-…" and a bare
// "Authorization: sk-…" are both accepted, as in LiteLLM.
func Credential(h http.Header) (secret, header string) {
	for _, name := range CredentialHeaders {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if name == "Authorization" {
			if scheme, rest, ok := strings.Cut(v, " "); ok {
				if !strings.EqualFold(scheme, "Bearer") {
					continue // Basic etc.: not ours
				}
				v = strings.TrimSpace(rest)
			}
		}
		if v != "" {
			return v, name
		}
	}
	return "", ""
}
