package proxy

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

func TestJoinURL(t *testing.T) {
	tests := []struct {
		name, target, sub, query string
		wantEscaped, wantQuery   string
		wantPath                 string // decoded; "" means same as wantEscaped
	}{
		{name: "no subpath keeps target path", target: "https://up.example/v1/ocr", wantEscaped: "/v1/ocr"},
		{name: "no subpath keeps target trailing slash", target: "https://up.example/v1/", wantEscaped: "/v1/"},
		{name: "empty target path", target: "https://up.example", wantEscaped: ""},
		{name: "empty target path with subpath", target: "https://up.example", sub: "/a", wantEscaped: "/a"},
		{name: "root target path with subpath", target: "https://up.example/", sub: "/a", wantEscaped: "/a"},
		{name: "subpath appended", target: "https://up.example/v1", sub: "/models/x", wantEscaped: "/v1/models/x"},
		{name: "one slash between", target: "https://up.example/v1/", sub: "/models", wantEscaped: "/v1/models"},
		{name: "subpath trailing slash kept", target: "https://up.example/v1", sub: "/models/", wantEscaped: "/v1/models/"},
		{name: "subpath of just a slash", target: "https://up.example/v1", sub: "/", wantEscaped: "/v1/"},
		{name: "escapes kept as sent", target: "https://up.example/v1", sub: "/a%20b/c%3Fd/%7Ee", wantEscaped: "/v1/a%20b/c%3Fd/%7Ee", wantPath: "/v1/a b/c?d/~e"},
		{name: "lowercase escape kept", target: "https://up.example/v1", sub: "/%e2%9c%93", wantEscaped: "/v1/%e2%9c%93", wantPath: "/v1/✓"},
		{name: "escaped target path kept", target: "https://up.example/api%20v1", sub: "/a", wantEscaped: "/api%20v1/a", wantPath: "/api v1/a"},
		{name: "dots inside a name are fine", target: "https://up.example/v1", sub: "/a..b/.well-known/x.", wantEscaped: "/v1/a..b/.well-known/x."},
		{name: "sub-delims, colon, at, brackets", target: "https://up.example/v1", sub: "/a:b@c;d=e,f!$&'()*+[x]", wantEscaped: "/v1/a:b@c;d=e,f!$&'()*+[x]"},
		{name: "percent-encoded percent", target: "https://up.example/v1", sub: "/100%25", wantEscaped: "/v1/100%25", wantPath: "/v1/100%"},
		{name: "client query", target: "https://up.example/v1", query: "a=1", wantEscaped: "/v1", wantQuery: "a=1"},
		{name: "target query then client query", target: "https://up.example/v1?key=t&x=1", sub: "/a", query: "b=2", wantEscaped: "/v1/a", wantQuery: "key=t&x=1&b=2"},
		{name: "target query alone", target: "https://up.example/v1?key=t", wantEscaped: "/v1", wantQuery: "key=t"},
		{name: "query byte-for-byte", target: "https://up.example/v1", query: "b=2&a=1&a=0&x=%20y+z&semi;colon&e=&=&%E2%9C%93&raw=%zz&k=a/b?c", wantEscaped: "/v1", wantQuery: "b=2&a=1&a=0&x=%20y+z&semi;colon&e=&=&%E2%9C%93&raw=%zz&k=a/b?c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := mustURL(t, tt.target)
			got, err := JoinURL(target, tt.sub, tt.query)
			if err != nil {
				t.Fatalf("JoinURL(%q, %q, %q): got error %v; want nil", tt.target, tt.sub, tt.query, err)
			}
			if got.Scheme != target.Scheme || got.Host != target.Host {
				t.Errorf("scheme/host: got %s://%s; want %s://%s", got.Scheme, got.Host, target.Scheme, target.Host)
			}
			if e := got.EscapedPath(); e != tt.wantEscaped {
				t.Errorf("EscapedPath: got %q; want %q", e, tt.wantEscaped)
			}
			wantPath := tt.wantPath
			if wantPath == "" {
				wantPath = tt.wantEscaped
			}
			if got.Path != wantPath {
				t.Errorf("Path: got %q; want %q", got.Path, wantPath)
			}
			if got.RawQuery != tt.wantQuery {
				t.Errorf("RawQuery: got %q; want %q", got.RawQuery, tt.wantQuery)
			}
			// The request line the transport will write.
			wantURI := tt.wantEscaped
			if wantURI == "" {
				wantURI = "/"
			}
			if tt.wantQuery != "" {
				wantURI += "?" + tt.wantQuery
			}
			if uri := got.RequestURI(); uri != wantURI {
				t.Errorf("RequestURI: got %q; want %q", uri, wantURI)
			}
		})
	}
}

func TestJoinURLRejectsUnsafeSubpaths(t *testing.T) {
	tests := []struct {
		name, sub, wantReason string
	}{
		{"dot-dot", "/..", `"." or ".."`},
		{"dot-dot in the middle", "/a/../b", `"." or ".."`},
		{"dot-dot then slash", "/../admin", `"." or ".."`},
		{"dot", "/./a", `"." or ".."`},
		{"trailing dot", "/a/.", `"." or ".."`},
		{"encoded dot-dot lower", "/%2e%2e/x", `"." or ".."`},
		{"encoded dot-dot upper", "/%2E%2E/x", `"." or ".."`},
		{"half-encoded dot-dot", "/.%2e/x", `"." or ".."`},
		{"encoded dot", "/%2e/x", `"." or ".."`},
		{"dot-dot with params", "/..;/admin", `"." or ".."`},
		{"encoded dot-dot with params", "/%2e%2e;x=1/admin", `"." or ".."`},
		{"encoded slash lower", "/a%2fb", "encoded slash"},
		{"encoded slash upper", "/a%2Fb", "encoded slash"},
		{"encoded slash climbing", "/..%2f..%2fadmin", "encoded slash"},
		{"double slash at start", "//evil.example/x", "empty segment"},
		{"double slash inside", "/a//b", "empty segment"},
		{"double slash at end", "/a//", "empty segment"},
		{"backslash", `/a\b`, "backslash"},
		{"backslash dot-dot", `/..\admin`, "backslash"},
		{"encoded backslash lower", "/a%5cb", "encoded backslash"},
		{"encoded backslash upper", "/a%5Cb", "encoded backslash"},
		{"double-encoded dot-dot", "/%252e%252e/admin", "double-encoded"},
		{"double-encoded slash", "/a%252fb", "double-encoded"},
		{"double-encoded backslash", "/a%255Cb", "double-encoded"},
		{"encoded NUL", "/a%00b", "control character"},
		{"encoded newline", "/a%0d%0aX-Injected:1", "control character"},
		{"malformed escape", "/a%zz", "malformed percent-escape"},
		{"truncated escape", "/a%4", "malformed percent-escape"},
		{"bare percent at end", "/a%", "malformed percent-escape"},
		{"no leading slash", "a/b", `start with "/"`},
		{"question mark", "/a?b", "not allowed"},
		{"hash", "/a#b", "not allowed"},
		{"space", "/a b", "not allowed"},
		{"raw newline", "/a\nb", "not allowed"},
		{"raw non-ASCII", "/é", "not allowed"},
	}
	target := mustURL(t, "https://up.example/v1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JoinURL(target, tt.sub, "")
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("JoinURL(%q): got (%v, %v); want a *PathError", tt.sub, got, err)
			}
			if !strings.Contains(pe.Reason, tt.wantReason) {
				t.Errorf("reason: got %q; want it to mention %q", pe.Reason, tt.wantReason)
			}
		})
	}
}

func TestJoinURLRejectsUnsafeQueries(t *testing.T) {
	target := mustURL(t, "https://up.example/v1")
	for _, q := range []string{"a=1\r\nX: y", "a= b", "a=1#frag", "a=\x00", "a=\x7f"} {
		t.Run(q, func(t *testing.T) {
			var qe *QueryError
			if _, err := JoinURL(target, "", q); !errors.As(err, &qe) {
				t.Fatalf("JoinURL(query %q): got %v; want a *QueryError", q, err)
			}
		})
	}
}

func TestJoinURLRejectsRelativeTarget(t *testing.T) {
	for _, target := range []*url.URL{nil, {Path: "/v1"}, {Scheme: "https", Path: "/v1"}} {
		if _, err := JoinURL(target, "/a", ""); err == nil {
			t.Errorf("JoinURL(%v): got nil error; want one", target)
		}
	}
}

// fuzzTargets are the target shapes FuzzJoinURL joins onto.
var fuzzTargets = []string{
	"https://up.example",
	"https://up.example/",
	"https://up.example/v1",
	"https://up.example/v1/",
	"https://up.example:8443/api/v2/files?key=abc",
	"http://127.0.0.1:9/a%20b/c",
}

// FuzzJoinURL checks JoinURL's promises for any sub-path and query: the host
// and scheme are the target's, the path stays under the target's path
// even after dot segments are resolved and after one more decoding, and the
// query is the target's followed by the client's, unchanged.
func FuzzJoinURL(f *testing.F) {
	seeds := []struct {
		target     uint8
		sub, query string
	}{
		{0, "", ""}, {2, "/a/b", "x=1"}, {3, "/", "a=1&a=2"}, {2, "/..", ""},
		{2, "/%2e%2e/admin", ""}, {2, "/a%2fb", ""}, {0, "//evil.example/x", ""},
		{2, `/a\b`, ""}, {2, "/a%5cb", ""}, {4, "/x/", "k=%zz;v"}, {5, "/..;/x", ""},
		{2, "/%252e%252e/", ""}, {1, "/@evil.example", ""}, {1, "/:80", ""},
		{2, "/a%00", ""}, {2, "/.%2E", ""}, {3, "/a/./b", ""}, {5, "/%e2%9c%93/", "q=✓"},
	}
	for _, s := range seeds {
		f.Add(s.target, s.sub, s.query)
	}
	f.Fuzz(func(t *testing.T, which uint8, sub, query string) {
		target := mustURL(t, fuzzTargets[int(which)%len(fuzzTargets)])
		got, err := JoinURL(target, sub, query)
		if err != nil {
			var pe *PathError
			var qe *QueryError
			if !errors.As(err, &pe) && !errors.As(err, &qe) {
				t.Fatalf("JoinURL(%q, %q): got error %v; want nil, *PathError or *QueryError", sub, query, err)
			}
			return
		}
		if got.Scheme != target.Scheme || got.Host != target.Host || got.User != nil {
			t.Fatalf("JoinURL(%q): got %s://%s (user %v); want %s://%s", sub, got.Scheme, got.Host, got.User, target.Scheme, target.Host)
		}
		// What the upstream will parse: the request line's target.
		uri := got.RequestURI()
		parsed, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatalf("RequestURI %q does not parse: %v", uri, err)
		}
		if parsed.Host != "" {
			t.Fatalf("RequestURI %q: got host %q; want none (origin-form)", uri, parsed.Host)
		}
		// Escaped path is the target's, then a slash, then the rest.
		base := strings.TrimSuffix(target.EscapedPath(), "/")
		escaped := got.EscapedPath()
		if escaped != target.EscapedPath() && !strings.HasPrefix(escaped, base+"/") {
			t.Fatalf("JoinURL(%q): escaped path %q is not under %q", sub, escaped, base)
		}
		// Under the target's path after resolving dot segments, both as
		// decoded once and as decoded twice (for upstreams that decode
		// again), with backslashes read as slashes.
		basePath := strings.TrimSuffix(target.Path, "/")
		for _, p := range decodings(got.Path) {
			clean := path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
			if clean != path.Clean("/"+basePath) && !strings.HasPrefix(clean, basePath+"/") {
				t.Fatalf("JoinURL(%q): path %q resolves to %q, outside %q", sub, p, clean, basePath)
			}
		}
		// No hidden separators: decoding adds no slash.
		if strings.Count(got.Path, "/") != strings.Count(escaped, "/") {
			t.Fatalf("JoinURL(%q): decoded path %q has more slashes than escaped %q", sub, got.Path, escaped)
		}
		if want := joinQuery(target.RawQuery, query); got.RawQuery != want {
			t.Fatalf("RawQuery: got %q; want %q", got.RawQuery, want)
		}
	})
}

// decodings returns p and, if it still decodes, p decoded once more.
func decodings(p string) []string {
	if twice, err := url.PathUnescape(p); err == nil && twice != p {
		return []string{p, twice}
	}
	return []string{p}
}
