package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/text/unicode/norm"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/keys"
)

// Requests are decoded against a schema: every field a route accepts, with
// its JSON kind. A field not in the schema is a 400 naming it (a typo must
// never be silently ignored); a field of the wrong type or out of range is a
// 400 naming it; JSON null means "not given", as in LiteLLM. LiteLLM fields
// Keyway stores but does not enforce are marked extra and kept in the
// record's metadata (see extrasKey).

// kind is what a field's JSON value must be.
type kind int

const (
	kString      kind = iota // any string
	kID                      // a non-empty identifier (user_id, team_id, …)
	kAlias                   // an identifier, or "" for none (key_alias)
	kBool                    // true or false
	kNumber                  // a number ≥ 0 (budgets, spend)
	kInt                     // an integer ≥ 0 (limits)
	kStrings                 // an array of strings
	kIDs                     // an array of identifiers (non-empty strings)
	kRoutes                  // an array of route patterns: "/path", "/path/*", "*"
	kObject                  // a JSON object
	kArray                   // a JSON array of anything
	kDuration                // a LiteLLM duration: "30s", "30m", "24h", "30d", "1w", "1mo"
	kRole                    // one of keys.Roles
	kSecret                  // a custom key value: "sk-…", at least keys.MinCustomKeyLen long
	kKeyType                 // LiteLLM key_type
	kMembers                 // members_with_roles: [{"role": "admin"|"user", "user_id": "…"}]
	kUnsupported             // a LiteLLM field Keyway refuses (with the reason in field.why)
	kIgnored                 // accepted for client compatibility, never stored
)

// field describes one accepted request field.
type field struct {
	kind kind
	// extra: a LiteLLM field Keyway does not enforce; stored in metadata
	// and returned at the top level of responses.
	extra bool
	// why explains a kUnsupported field.
	why string
}

type schema map[string]field

// merge returns a schema with the fields of all ss (later ones win).
func merge(ss ...schema) schema {
	out := schema{}
	for _, s := range ss {
		for k, v := range s {
			out[k] = v
		}
	}
	return out
}

// values are a decoded request: the fields present (not null), typed.
type values struct {
	m map[string]any
	s schema
}

func (v *values) has(name string) bool { _, ok := v.m[name]; return ok }

// names returns the present fields, sorted.
func (v *values) names() []string {
	out := make([]string, 0, len(v.m))
	for k := range v.m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (v *values) str(name string) (string, bool) { s, ok := v.m[name].(string); return s, ok }

func (v *values) boolean(name string) (bool, bool) { b, ok := v.m[name].(bool); return b, ok }

func (v *values) number(name string) (*float64, bool) {
	f, ok := v.m[name].(float64)
	if !ok {
		return nil, false
	}
	return &f, true
}

func (v *values) integer(name string) (*int64, bool) {
	n, ok := v.m[name].(int64)
	if !ok {
		return nil, false
	}
	return &n, true
}

func (v *values) strs(name string) ([]string, bool) { s, ok := v.m[name].([]string); return s, ok }

func (v *values) object(name string) (map[string]any, bool) {
	o, ok := v.m[name].(map[string]any)
	return o, ok
}

func (v *values) members() ([]member, bool) {
	m, ok := v.m["members_with_roles"].([]member)
	return m, ok
}

// extras returns the present extra fields.
func (v *values) extras() map[string]any {
	var out map[string]any
	for k, val := range v.m {
		if v.s[k].extra {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = val
		}
	}
	return out
}

// ignored is the value of a kIgnored field.
type ignored struct{}

// member is one entry of members_with_roles.
type member struct {
	Role      string `json:"role"`
	UserID    string `json:"user_id,omitempty"`
	UserEmail string `json:"user_email,omitempty"`
}

// readBody reads a JSON object body of at most MaxBodyBytes. An empty body
// is an empty object.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, *apierr.Error) {
	if r.Body == nil {
		return map[string]json.RawMessage{}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeTooLarge,
				fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)).WithParam("body")
		}
		return nil, apierr.BadRequest("body", "reading the request body failed")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if body[0] != '{' {
		return nil, apierr.BadRequest("body", "request body must be a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, apierr.BadRequest("body", "malformed JSON body: "+jsonErr(err))
	}
	if raw == nil {
		return nil, apierr.BadRequest("body", "request body must be a JSON object")
	}
	return raw, nil
}

// jsonErr describes a JSON syntax error without echoing the body (which may
// hold a secret).
func jsonErr(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "not a JSON object"
}

// decode checks raw against s and types every present field. route names
// the endpoint in the unknown-field message.
func decode(raw map[string]json.RawMessage, s schema, route string) (*values, *apierr.Error) {
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	slices.Sort(names)
	v := &values{m: map[string]any{}, s: s}
	for _, name := range names {
		f, ok := s[name]
		if !ok {
			return nil, unknownField(name, route, s)
		}
		msg := bytes.TrimSpace(raw[name])
		if string(msg) == "null" {
			continue
		}
		val, e := decodeField(name, f, msg)
		if e != nil {
			return nil, e
		}
		v.m[name] = val
	}
	return v, nil
}

func unknownField(name, route string, s schema) *apierr.Error {
	if strings.HasPrefix(name, keys.SecretPrefix) {
		name = keys.Abbrev(name) // never echo what may be a key
	}
	msg := fmt.Sprintf("unknown field %s for %s", quote(name), route)
	if near := nearest(name, s); near != "" {
		msg += fmt.Sprintf("; did you mean %s?", quote(near))
	}
	return apierr.BadRequest(name, msg)
}

// nearest suggests the accepted field closest to a typo.
func nearest(name string, s schema) string {
	best, bestD := "", 3
	for k := range s {
		if d := editDistance(name, k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func decodeField(name string, f field, msg json.RawMessage) (any, *apierr.Error) {
	bad := func(format string, args ...any) *apierr.Error {
		return apierr.BadRequest(name, name+" "+fmt.Sprintf(format, args...))
	}
	switch f.kind {
	case kUnsupported:
		return nil, bad("is not supported by Keyway: %s", f.why)
	case kIgnored:
		return ignored{}, nil
	case kString, kID, kAlias, kDuration, kRole, kSecret, kKeyType:
		var s string
		if json.Unmarshal(msg, &s) != nil {
			return nil, bad("must be a string")
		}
		if f.kind == kString && len(s) > maxStringLen {
			return nil, bad("must be at most %d bytes", maxStringLen)
		}
		if e := checkString(name, f.kind, s); e != nil {
			return nil, e
		}
		return s, nil
	case kBool:
		var b bool
		if json.Unmarshal(msg, &b) != nil {
			return nil, bad("must be true or false")
		}
		return b, nil
	case kNumber:
		var n float64
		if json.Unmarshal(msg, &n) != nil {
			return nil, bad("must be a number")
		}
		if n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, bad("must not be negative (got %v)", n)
		}
		if n > MaxDollars || n != 0 && n < MinDollars {
			return nil, bad("must be 0 or between %g and %g dollars (got %g): budgets are stored as integer nano-dollars", MinDollars, MaxDollars, n)
		}
		return n, nil
	case kInt:
		var n json.Number
		if json.Unmarshal(msg, &n) != nil {
			return nil, bad("must be an integer")
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return nil, bad("must be an integer (got %s)", n.String())
		}
		if i < 0 {
			return nil, bad("must not be negative (got %d)", i)
		}
		return i, nil
	case kStrings, kIDs, kRoutes:
		var ps []*string
		if json.Unmarshal(msg, &ps) != nil {
			return nil, bad("must be an array of strings")
		}
		if len(ps) > maxListLen {
			return nil, bad("must have at most %d entries", maxListLen)
		}
		ss := make([]string, len(ps))
		for i, p := range ps {
			elem := fmt.Sprintf("%s[%d]", name, i)
			if p == nil {
				return nil, apierr.BadRequest(elem, elem+" must be a string, not null")
			}
			s := *p
			ss[i] = s
			if len(s) > maxStringLen {
				return nil, apierr.BadRequest(elem, fmt.Sprintf("%s must be at most %d bytes", elem, maxStringLen))
			}
			switch f.kind {
			case kIDs:
				if e := checkString(elem, kID, s); e != nil {
					return nil, e
				}
			case kRoutes:
				if e := checkRoute(name, elem, s); e != nil {
					return nil, e
				}
			}
		}
		return ss, nil
	case kObject:
		var o map[string]any
		if json.Unmarshal(msg, &o) != nil || o == nil {
			return nil, bad("must be a JSON object")
		}
		if e := checkJSONValue(name, o, len(msg)); e != nil {
			return nil, e
		}
		if name == "metadata" {
			if _, ok := o[extrasKey]; ok {
				return nil, apierr.BadRequest("metadata", "metadata."+extrasKey+" is reserved by Keyway")
			}
		}
		return o, nil
	case kArray:
		var a []any
		if json.Unmarshal(msg, &a) != nil {
			return nil, bad("must be an array")
		}
		if e := checkJSONValue(name, a, len(msg)); e != nil {
			return nil, e
		}
		if a == nil {
			a = []any{}
		}
		return a, nil
	case kMembers:
		var raw []map[string]json.RawMessage
		if json.Unmarshal(msg, &raw) != nil {
			return nil, bad("must be an array of objects like {\"role\": \"user\", \"user_id\": \"…\"}")
		}
		ms := make([]member, 0, len(raw))
		for i, r := range raw {
			elem := fmt.Sprintf("%s[%d]", name, i)
			mv, e := decode(r, schema{"role": {kind: kString}, "user_id": {kind: kID}, "user_email": {kind: kString}}, elem)
			if e != nil {
				e.Param = elem + "." + e.Param
				e.Message = elem + "." + e.Message
				return nil, e
			}
			m := member{Role: "user"}
			if s, ok := mv.str("role"); ok {
				m.Role = s
			}
			if m.Role != "user" && m.Role != "admin" {
				return nil, apierr.BadRequest(elem+".role", elem+`.role must be "admin" or "user"`)
			}
			m.UserID, _ = mv.str("user_id")
			m.UserEmail, _ = mv.str("user_email")
			if m.UserID == "" {
				return nil, apierr.BadRequest(elem+".user_id", elem+".user_id is required")
			}
			ms = append(ms, m)
		}
		return ms, nil
	}
	return nil, bad("has an unsupported type")
}

// Bounds on what a record may hold. Both stores hold exactly these values
// (DynamoDB's item, number and map-key rules are the tighter ones), so a
// request is answered the same 400 on either store, never a 503 on one;
// docs/admin-api.md ("Bounds") lists them.
const (
	// maxIDLen bounds identifiers, aliases and the like.
	maxIDLen = 256
	// maxStringLen bounds a free-text string (user_alias, user_email, a
	// list entry).
	maxStringLen = 1024
	// maxListLen bounds a list field (models, allowed_routes, teams, …).
	maxListLen = 256
	// maxJSONBytes bounds the JSON text of one object or array field
	// (metadata and LiteLLM's object fields), so records stay far below
	// DynamoDB's 400 KB item limit however many fields are set.
	maxJSONBytes = 16 << 10
	// maxJSONDepth bounds nesting inside such a field.
	maxJSONDepth = 32
	// maxJSONNumber and minJSONNumber bound a non-zero number's magnitude
	// inside such a field (DynamoDB numbers lie within 1e-130..1e126).
	maxJSONNumber = 1e100
	minJSONNumber = 1e-100
)

// MaxDollars and MinDollars bound a money amount (max_budget, soft_budget,
// spend): the ledger keeps integer nano-dollars in an int64, so an amount
// is 0 or at least one nano-dollar, and at most 9e9 dollars.
const (
	MaxDollars = 9e9
	MinDollars = 1e-9
)

// checkJSONValue checks a free-form JSON field (metadata, LiteLLM object and
// array fields) against the bounds above: its size (n bytes of JSON), its
// depth, no empty object keys (DynamoDB cannot store them), and finite
// numbers within range. The error names the field and the path inside it.
func checkJSONValue(name string, v any, n int) *apierr.Error {
	if n > maxJSONBytes {
		return apierr.BadRequest(name, fmt.Sprintf("%s must be at most %d bytes of JSON (got %d)", name, maxJSONBytes, n))
	}
	var walk func(path string, v any, depth int) *apierr.Error
	walk = func(path string, v any, depth int) *apierr.Error {
		switch v := v.(type) {
		case map[string]any:
			if depth >= maxJSONDepth {
				return apierr.BadRequest(name, fmt.Sprintf("%s is nested deeper than %d levels (at %s)", name, maxJSONDepth, path))
			}
			for k, x := range v {
				if k == "" {
					return apierr.BadRequest(name, fmt.Sprintf("%s: an object key at %s is empty; keys must not be empty", name, path))
				}
				if e := walk(path+"."+k, x, depth+1); e != nil {
					return e
				}
			}
		case []any:
			if depth >= maxJSONDepth {
				return apierr.BadRequest(name, fmt.Sprintf("%s is nested deeper than %d levels (at %s)", name, maxJSONDepth, path))
			}
			for i, x := range v {
				if e := walk(fmt.Sprintf("%s[%d]", path, i), x, depth+1); e != nil {
					return e
				}
			}
		case float64:
			a := math.Abs(v)
			if math.IsInf(v, 0) || math.IsNaN(v) || a > maxJSONNumber || a != 0 && a < minJSONNumber {
				return apierr.BadRequest(name, fmt.Sprintf("%s: the number at %s is out of range (0, or a magnitude between %g and %g)", name, path, minJSONNumber, maxJSONNumber))
			}
		}
		return nil
	}
	return walk(name, v, 0)
}

// maxRecordBytes bounds the JSON of one stored record (user, team, key)
// after a request is applied: every field is bounded, but many bounded
// fields together could still pass DynamoDB's 400 KB item limit.
const maxRecordBytes = 128 << 10

// checkRecordSize refuses a record whose stored form would exceed
// maxRecordBytes.
func checkRecordSize(rec any) *apierr.Error {
	b, err := json.Marshal(rec)
	if err == nil && len(b) <= maxRecordBytes {
		return nil
	}
	return apierr.BadRequest("body", fmt.Sprintf("the record would be %d bytes of JSON; at most %d are allowed (shorten metadata or list fields)", len(b), maxRecordBytes))
}

// reservedID reports whether id reads like one of the actor names that
// created_by, updated_by and audit lines use for callers without a user
// ("master key", "key sk-...abcd", "anonymous"): a user may not take such
// an id, so those names cannot be forged.
func reservedID(id string) bool {
	l := strings.ToLower(strings.TrimSpace(id))
	return l == auth.MasterActor || l == "anonymous" || strings.HasPrefix(l, "key ") || strings.HasPrefix(l, "user ")
}

// checkString validates a string of kind k; name is the field for errors.
// It never echoes a secret.
func checkString(name string, k kind, s string) *apierr.Error {
	switch k {
	case kAlias:
		if s != "" {
			return checkString(name, kID, s)
		}
	case kID:
		if s == "" {
			return apierr.BadRequest(name, name+" must not be empty")
		}
		if len(s) > maxIDLen {
			return apierr.BadRequest(name, fmt.Sprintf("%s must be at most %d bytes", name, maxIDLen))
		}
		if !printable(s) {
			return apierr.BadRequest(name, name+" must be printable text without control characters")
		}
		if !visibleID(s) {
			return apierr.BadRequest(name, name+" must not contain invisible, zero-width or bidirectional-control characters, nor start or end with a space")
		}
		if strings.Contains(name, "user_id") && reservedID(s) {
			return apierr.BadRequest(name, name+" "+quote(s)+" is reserved: it reads like a name Keyway gives callers without a user")
		}
	case kDuration:
		d, err := parseDuration(s)
		if err == nil && d.zero() && name != "grace_period" {
			err = errors.New("must be longer than zero")
		}
		if err != nil {
			return apierr.BadRequest(name, fmt.Sprintf("%s %s %v", name, quote(s), err))
		}
	case kRole:
		if !keys.Role(s).Valid() {
			return apierr.BadRequest(name, fmt.Sprintf("%s %s is not a role; valid roles: %s", name, quote(s), roleList()))
		}
	case kSecret:
		return checkCustomKey(name, s)
	case kKeyType:
		if !slices.Contains(keyTypes, s) {
			return apierr.BadRequest(name, fmt.Sprintf("%s %s is not a key type; valid: %s", name, quote(s), strings.Join(keyTypes, ", ")))
		}
	}
	return nil
}

// keyTypes are LiteLLM's key_type values (stored, not enforced).
var keyTypes = []string{"default", "llm_api", "management", "read_only"}

func roleList() string {
	out := make([]string, len(keys.Roles))
	for i, r := range keys.Roles {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// maxCustomKeyLen bounds a custom key value.
const maxCustomKeyLen = 256

// checkCustomKey validates a caller-chosen key value: "sk-" plus enough
// characters to be unguessable, header-safe. The value is never echoed.
func checkCustomKey(name, s string) *apierr.Error {
	if !strings.HasPrefix(s, keys.SecretPrefix) {
		return apierr.BadRequest(name, name+` must start with "sk-"`)
	}
	if len(s) < keys.MinCustomKeyLen {
		return apierr.BadRequest(name, fmt.Sprintf("%s is too short: a custom key must be at least %d characters (\"sk-\" and %d more) so it cannot be guessed", name, keys.MinCustomKeyLen, keys.MinCustomKeyLen-len(keys.SecretPrefix)))
	}
	if len(s) > maxCustomKeyLen {
		return apierr.BadRequest(name, fmt.Sprintf("%s must be at most %d characters", name, maxCustomKeyLen))
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f {
			return apierr.BadRequest(name, name+" may only contain printable ASCII characters without spaces")
		}
	}
	return nil
}

// checkRoute validates an allowed_routes entry: a path ("/v1/ocr"), a path
// prefix ("/v1/ocr/*" or "/v1/*"), "*", or (in allowed_routes only) one of
// LiteLLM's route-group names that covers pass-through endpoints
// ("llm_api_routes"; see auth.PassThroughGroups). Other group names are
// refused rather than silently never matching.
func checkRoute(field, name, s string) *apierr.Error {
	if s == "*" || (field == "allowed_routes" && auth.IsPassThroughGroup(s)) {
		return nil
	}
	if !strings.HasPrefix(s, "/") {
		return apierr.BadRequest(name, fmt.Sprintf("%s %s must be a path starting with \"/\" (or \"*\")%s", name, quote(s), groupHint(field)))
	}
	if !printable(s) || strings.ContainsAny(s, " ?#") {
		return apierr.BadRequest(name, name+" must be a plain path without spaces, query or fragment")
	}
	return nil
}

func groupHint(name string) string {
	if name != "allowed_routes" {
		return ""
	}
	return "; the LiteLLM route groups accepted are " + strings.Join(auth.PassThroughGroups, ", ")
}

// visibleID reports whether an identifier is free of characters that look
// like nothing (Unicode's default-ignorable code points: format characters
// such as zero-width spaces and joiners, bidi controls and the BOM,
// variation selectors, the combining grapheme joiner, Hangul fillers;
// separators other than the plain space) and of surrounding spaces, and is
// in Unicode normalization form C, so that two ids that look the same are
// the same id ("ali\u200bce" is not accepted beside "alice", nor a
// decomposed "alice\u0301" beside "alicé").
func visibleID(s string) bool {
	if strings.TrimSpace(s) != s || !norm.NFC.IsNormalString(s) {
		return false
	}
	for _, c := range s {
		if unicode.Is(unicode.Cf, c) || (unicode.IsSpace(c) && c != ' ') || unicode.In(c, unicode.Zl, unicode.Zp) ||
			unicode.In(c, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// durationRE is LiteLLM's duration syntax (duration_in_seconds): a number
// and a unit s, m, h, d, w or mo; a bare number is seconds.
var durationRE = regexp.MustCompile(`^([0-9]{1,10})(s|m|h|d|w|mo)?$`)

// maxDuration bounds durations so expiries stay representable.
const maxDuration = 100 * 366 * 24 * time.Hour

// duration is a parsed LiteLLM duration.
type duration struct {
	n    int64
	unit string
}

// parseDuration parses "30s", "30m", "24h", "30d", "1w", "1mo" (calendar
// months, as LiteLLM), or a bare number of seconds.
func parseDuration(s string) (duration, error) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return duration{}, errors.New(`is not a duration; use a number and a unit s, m, h, d, w or mo, like "30s", "30m", "24h", "30d", "1w", "1mo"`)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return duration{}, errors.New("is too long")
	}
	d := duration{n: n, unit: m[2]}
	if d.approx() > maxDuration {
		return duration{}, errors.New("is too long (at most 100 years)")
	}
	return d, nil
}

// approx is d as a time.Duration, months counted as 31 days (for bounds).
func (d duration) approx() time.Duration {
	per := map[string]time.Duration{"": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "mo": 31 * 24 * time.Hour}[d.unit]
	if d.n > int64(maxDuration/per)+1 {
		return maxDuration + 1
	}
	return time.Duration(d.n) * per
}

// after returns t plus d; months are calendar months.
func (d duration) after(t time.Time) time.Time {
	if d.unit == "mo" {
		return t.AddDate(0, int(d.n), 0)
	}
	return t.Add(d.approx())
}

// zero reports whether d is no time at all.
func (d duration) zero() bool { return d.n == 0 }

// query parameters

// parseQuery decodes a GET request's query against s (kString, kID, kInt,
// kBool, kRole, kIDs as a comma-separated list). Unknown parameters are a
// 400 naming them, like unknown body fields.
func parseQuery(r *http.Request, s schema, route string) (*values, *apierr.Error) {
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	v := &values{m: map[string]any{}, s: s}
	for _, name := range names {
		f, ok := s[name]
		if !ok {
			e := unknownField(name, route, s)
			e.Message = strings.Replace(e.Message, "unknown field", "unknown query parameter", 1)
			return nil, e
		}
		val := q.Get(name)
		switch f.kind {
		case kInt:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, apierr.BadRequest(name, name+" must be an integer")
			}
			v.m[name] = n
		case kBool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, apierr.BadRequest(name, name+" must be true or false")
			}
			v.m[name] = b
		case kIDs:
			var ids []string
			for _, id := range strings.Split(val, ",") {
				if id = strings.TrimSpace(id); id != "" {
					if e := checkString(name, kID, id); e != nil {
						return nil, e
					}
					ids = append(ids, id)
				}
			}
			v.m[name] = ids
		default:
			if e := checkString(name, f.kind, val); e != nil {
				return nil, e
			}
			v.m[name] = val
		}
	}
	return v, nil
}

// body reads and decodes the call's JSON body against s.
func (c *call) body(s schema) (*values, *apierr.Error) {
	raw, e := readBody(c.w, c.r)
	if e != nil {
		return nil, e
	}
	v, e := decode(raw, s, policy[c.op].route)
	if e == nil {
		c.warnings = unenforcedWarnings(raw, s)
	}
	return v, e
}

// query decodes the call's query parameters against s.
func (c *call) query(s schema) (*values, *apierr.Error) {
	return parseQuery(c.r, s, policy[c.op].route)
}
