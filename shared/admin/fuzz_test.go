package admin

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeBody feeds arbitrary bodies through the admin request decoder
// (readBody, then every route's schema). It must never panic, must answer
// every refusal with a 4xx that names a field, and whatever it accepts must
// lie within the documented bounds (so both stores can hold it).
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"user_id":"alice","max_budget":10}`, `{"metadata":{"a":{"b":[1,2,{"c":null}]}}}`,
		`{"models":["gpt",null]}`, `{"max_budget":1e200}`, `{"metadata":{"":1}}`, `{"user_id":"ali\u200bce"}`,
		`{"members_with_roles":[{"role":"user","user_id":"bob"}]}`, `{"duration":"30d","key_alias":"a"}`,
		`{"keys":["sk-abc"],"key_aliases":["x"]}`, `[1]`, `{"tpm_limit":-1}`, `{"spend":1e-300}`,
	} {
		f.Add([]byte(seed))
	}
	schemas := []schema{keyGenerateSchema, keyUpdateSchema, keyRegenerateSchema, keyDeleteSchema, keyBlockSchema,
		userNewSchema, userUpdateSchema, userDeleteSchema, teamNewSchema, teamUpdateSchema, teamDeleteSchema}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		raw, e := readBody(httptest.NewRecorder(), r)
		if e != nil {
			if e.Status < 400 || e.Status > 499 {
				t.Fatalf("readBody: status %d; want 4xx", e.Status)
			}
			return
		}
		for _, s := range schemas {
			v, e := decode(raw, s, "/x")
			if e != nil {
				if e.Status < 400 || e.Status > 499 || e.Message == "" || e.Param == "" && !bytes.Contains(body, []byte(`""`)) {
					t.Fatalf("decode: %d param %q (%s); want a 4xx naming a field", e.Status, e.Param, e.Message)
				}
				continue
			}
			for name, val := range v.m {
				switch x := val.(type) {
				case float64:
					if math.IsNaN(x) || x < 0 || x > MaxDollars || x != 0 && x < MinDollars {
						t.Fatalf("%s = %v accepted; out of bounds", name, x)
					}
				case string:
					if len(x) > maxStringLen && s[name].kind != kSecret {
						t.Fatalf("%s: %d bytes accepted", name, len(x))
					}
				case map[string]any, []any:
					b, _ := json.Marshal(x)
					if e := checkJSONValue(name, x, len(b)); e != nil && len(b) <= maxJSONBytes {
						t.Fatalf("%s accepted but fails its bounds: %s", name, e.Message)
					}
				}
			}
		}
	})
}
