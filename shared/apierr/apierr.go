// Package apierr writes gateway-made errors in LiteLLM's envelope:
//
//	{"error": {"message": "...", "type": "...", "param": "...", "code": "401"}}
//
// with code the HTTP status as a string. Upstream errors are never rewritten;
// this package is only for responses the gateway itself makes.
package apierr

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error types, as LiteLLM names them where it has a name.
const (
	TypeAuth           = "auth_error"
	TypeExpiredKey     = "expired_key"
	TypePermission     = "permission_denied"
	TypeBadRequest     = "bad_request_error"
	TypeNotFound       = "not_found"
	TypeMethod         = "method_not_allowed"
	TypeTooLarge       = "request_too_large"
	TypeRateLimit      = "rate_limit_error"
	TypeBudgetExceeded = "budget_exceeded"
	TypeUpstream       = "upstream_error"
	TypeTimeout        = "timeout"
	TypeUnavailable    = "service_unavailable"
	TypeInternal       = "internal_server_error"
)

// StatusClientClosed (nginx's and Caddy's 499) is logged, never sent, when
// the caller went away before the response was complete.
const StatusClientClosed = 499

// Error is a gateway-made error response.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param"`
	Code    string `json:"code"`
	// RetryAfter, when > 0, is sent as the Retry-After header (seconds):
	// 429s for limits and budgets say when capacity frees.
	RetryAfter int64 `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// New returns an Error with Code filled from status.
func New(status int, typ, message string) *Error {
	return &Error{Status: status, Type: typ, Message: message, Code: strconv.Itoa(status)}
}

// WithParam returns a copy of e naming the offending field.
func (e *Error) WithParam(param string) *Error {
	c := *e
	c.Param = param
	return &c
}

// Write sends e as the response. Extra headers (Allow, Retry-After) are the
// caller's to set before calling Write.
func Write(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(struct {
		Error *Error `json:"error"`
	}{e})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(e.RetryAfter, 10))
	}
	w.WriteHeader(e.Status)
	w.Write(append(body, '\n'))
}

// Common constructors.

// BadRequest is a 400 naming the offending field.
func BadRequest(param, message string) *Error {
	return New(http.StatusBadRequest, TypeBadRequest, message).WithParam(param)
}

// NotFound is a 404.
func NotFound(message string) *Error { return New(http.StatusNotFound, TypeNotFound, message) }

// Unauthorized is a 401 auth_error; message says what was wrong, never the key.
func Unauthorized(message string) *Error {
	return New(http.StatusUnauthorized, TypeAuth, "Authentication Error, "+message)
}

// Forbidden is a 403 with the reason.
func Forbidden(message string) *Error {
	return New(http.StatusForbidden, TypePermission, message)
}

// Unavailable is a 503: a dependency (key store, config) is unreachable and
// the gateway fails closed.
func Unavailable(message string) *Error {
	return New(http.StatusServiceUnavailable, TypeUnavailable, message)
}
