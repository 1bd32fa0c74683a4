package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// PathError is a sub-path that JoinURL refuses to join because the result
// could name a resource outside the target's path, or would be read
// differently by different servers. The gateway answers it with a 400 rather
// than silently normalising the path into a different resource.
type PathError struct {
	// Reason says what is wrong, e.g. `it contains a ".." segment`. It never
	// quotes the whole path.
	Reason string
}

func (e *PathError) Error() string { return "unsafe sub-path: " + e.Reason }

// QueryError is a raw query that cannot be put on a request line unchanged
// (control characters, space, '#'). Such a query never arrives through an
// HTTP/1.1 server, but may through other front ends (Lambda events).
type QueryError struct {
	Reason string
}

func (e *QueryError) Error() string { return "unsafe query string: " + e.Reason }

// JoinURL builds the upstream URL for one request.
//
// The path is the target's escaped path followed by escapedSubpath (""
// or starting with "/", as route.Route.Subpath gives it), joined with
// exactly one slash. The escaped form is kept as it is (RawPath): Keyway
// neither decodes nor re-encodes what the caller sent, and keeps a trailing
// slash. A sub-path that could climb above the target's path or be read
// differently by the upstream is a *PathError (see checkSubpath); nothing is
// cleaned, because cleaning "a/../b" into "b" forwards a request for a
// resource the caller did not name.
//
// Scheme and host are always the target's. The query is the target's own
// query, then "&", then rawQuery byte-for-byte (repeated keys, order and
// encoding kept; nothing is parsed).
func JoinURL(target *url.URL, escapedSubpath, rawQuery string) (*url.URL, error) {
	if target == nil || target.Scheme == "" || target.Host == "" {
		return nil, errors.New("proxy: target must be an absolute URL")
	}
	if err := checkSubpath(escapedSubpath); err != nil {
		return nil, err
	}
	if err := checkQuery(rawQuery); err != nil {
		return nil, err
	}
	escaped := target.EscapedPath()
	if escapedSubpath != "" {
		escaped = strings.TrimSuffix(escaped, "/") + escapedSubpath
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		// Only reachable with a target whose RawPath is malformed; the
		// sub-path was checked above.
		return nil, fmt.Errorf("proxy: target path: %w", err)
	}
	return &url.URL{
		Scheme:   target.Scheme,
		Host:     target.Host,
		Path:     decoded,
		RawPath:  escaped,
		RawQuery: joinQuery(target.RawQuery, rawQuery),
	}, nil
}

// joinQuery appends the client's raw query to the target's own, unchanged.
func joinQuery(targetQuery, clientQuery string) string {
	switch {
	case targetQuery == "":
		return clientQuery
	case clientQuery == "":
		return targetQuery
	}
	return targetQuery + "&" + clientQuery
}

// checkSubpath rejects sub-paths that could leave the target's path or mean
// different things to different servers:
//
//   - dot segments, literal or percent-encoded ("..", "%2e%2e", ".%2E"), and
//     "..;x" (servlet containers strip ";params" before resolving dots);
//   - encoded slashes and backslashes (%2F, %5C) and literal backslashes,
//     which some servers decode or treat as separators after routing;
//   - empty segments ("//"), which some servers collapse and which at the
//     start of a request target read as an authority;
//   - double-encoded forms of the above ("%252e%252e", "%252F"), for
//     upstreams that decode twice;
//   - encoded control characters (%00–%1F, %7F) and malformed escapes;
//   - any byte outside what an escaped URL path may hold.
//
// A single trailing slash is allowed and kept.
func checkSubpath(s string) error {
	if s == "" {
		return nil
	}
	if s[0] != '/' {
		return &PathError{Reason: `it must be empty or start with "/"`}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			return &PathError{Reason: "it contains a backslash"}
		case c == '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return &PathError{Reason: "it contains a malformed percent-escape"}
			}
			switch b := unhex(s[i+1])<<4 | unhex(s[i+2]); {
			case b == '/':
				return &PathError{Reason: "it contains an encoded slash (%2F)"}
			case b == '\\':
				return &PathError{Reason: "it contains an encoded backslash (%5C)"}
			case b < 0x20 || b == 0x7f:
				return &PathError{Reason: "it contains an encoded control character"}
			}
			i += 2
		case !pathByte(c):
			return &PathError{Reason: "it contains a character not allowed in a URL path"}
		}
	}
	if strings.Contains(s, "//") {
		return &PathError{Reason: `it contains an empty segment ("//")`}
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "" {
			continue // only a trailing slash gets here
		}
		once, _ := url.PathUnescape(seg) // escapes were checked above
		if isDotSegment(once) {
			return &PathError{Reason: `it contains a "." or ".." segment (also when percent-encoded)`}
		}
		if strings.IndexByte(once, '%') < 0 {
			continue
		}
		if twice, err := url.PathUnescape(once); err == nil &&
			(isDotSegment(twice) || strings.ContainsAny(twice, `/\`)) {
			return &PathError{Reason: "it contains a double-encoded dot segment, slash or backslash"}
		}
	}
	return nil
}

// isDotSegment reports whether a decoded segment is "." or "..", also with
// a ";params" suffix ("..;jsessionid=x").
func isDotSegment(seg string) bool {
	name, _, _ := strings.Cut(seg, ";")
	return name == "." || name == ".."
}

// pathByte reports whether c may appear unescaped in an escaped URL path:
// RFC 3986 pchar plus "/" and "%", and "[" "]", which Go's url package keeps
// unescaped in a RawPath (so they can arrive in route.Route.Subpath).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', // unreserved
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', // sub-delims
		':', '@', '/', '%', '[', ']':
		return true
	}
	return false
}

// checkQuery rejects a raw query that would break the request line:
// control characters, space and '#'. Everything else is forwarded as is,
// including bytes that are not valid escapes (byte-for-byte forwarding).
func checkQuery(q string) error {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c < 0x20 || c == 0x7f:
			return &QueryError{Reason: "it contains a control character"}
		case c == ' ':
			return &QueryError{Reason: "it contains a space"}
		case c == '#':
			return &QueryError{Reason: `it contains "#"`}
		}
	}
	return nil
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
