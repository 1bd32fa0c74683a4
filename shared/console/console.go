// Package console serves Keyway's admin console: one static page and its
// script and style, embedded in the binary (go:embed), at /ui.
//
// The page holds no data and needs no key; it asks for one (the master key
// or a virtual key), keeps it in sessionStorage and sends it as
// "Authorization: Bearer" on every admin API call, so there is no cookie and
// no CSRF. What it shows follows the API's answers: the API decides what a
// caller may see and do.
//
// Every URL the page uses is relative, so it works behind an API Gateway
// stage prefix (the browser at /prod/ui/, the function seeing /ui/) and at a
// custom domain's root alike. Nothing is fetched from outside the
// deployment: no CDN, no web fonts; charts are hand-made SVG.
//
// Cheap by construction: nothing runs at init. The embedded files are served
// as they are; their ETags are computed on the first request.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/route"
)

//go:embed static
var static embed.FS

// Prefix is the console's path on the gateway: the route table's, which
// sends the requests here.
const Prefix = route.ConsolePrefix

// CSP is the console's Content-Security-Policy: scripts and styles only from
// the console's own files (no inline script, no eval), API calls only to the
// same origin, no frames around it, no plugins, no form posts elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// versioned are the files index.html references with a ?v= content hash,
// which lets them be cached as immutable.
var versioned = []string{"app.js", "app.css"}

// file is one embedded file, ready to serve.
type file struct {
	body  []byte
	etag  string
	ctype string
	hash  string // first 12 hex digits of the SHA-256
}

// Handler serves the console.
type Handler struct {
	once  sync.Once
	files map[string]*file
}

var _ http.Handler = (*Handler)(nil)

// New returns the console handler. It does no work until the first request.
func New() *Handler { return &Handler{} }

// load reads and hashes the embedded files once, on the first request, and
// stamps index.html's references with their hashes.
func (h *Handler) load() {
	h.files = map[string]*file{}
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		h.files[name] = newFile(name, b)
		return nil
	})
	if idx, ok := h.files["index.html"]; ok {
		body := idx.body
		for _, name := range versioned {
			if f, ok := h.files[name]; ok {
				body = bytes.ReplaceAll(body, []byte(`"./`+name+`"`), []byte(`"./`+name+`?v=`+f.hash+`"`))
			}
		}
		h.files["index.html"] = newFile("index.html", body)
	}
}

func newFile(name string, b []byte) *file {
	sum := sha256.Sum256(b)
	hx := hex.EncodeToString(sum[:])
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	}
	return &file{body: b, etag: `"` + hx[:32] + `"`, ctype: ctype, hash: hx[:12]}
}

// ServeHTTP serves /ui (redirected to /ui/), /ui/ (the page) and the files
// below it. Only GET and HEAD.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.load)
	hd := w.Header()
	setSecurityHeaders(hd)

	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		apierr.Write(w, apierr.NotFound("no console file "+r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		apierr.Write(w, apierr.New(http.StatusMethodNotAllowed, apierr.TypeMethod, "the console accepts GET and HEAD"))
		return
	}
	if rest == "" {
		// Relative on purpose: behind a stage prefix the browser is at
		// /prod/ui, which "ui/" resolves to /prod/ui/; http.Redirect would
		// make it the absolute /ui/ and lose the stage.
		target := "ui/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		hd.Set("Location", target)
		hd.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(rest, "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		apierr.Write(w, apierr.NotFound("no console file "+path.Clean("/"+name)))
		return
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	if v := r.URL.Query().Get("v"); v != "" && v == f.hash {
		// The URL names this exact content: it can never change.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// index.html and unversioned requests: revalidate (cheap, 304).
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// setSecurityHeaders sets the headers every console response carries.
func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
}
