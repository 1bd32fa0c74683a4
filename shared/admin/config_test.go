package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/keys"
)

func TestConfigEndpoints(t *testing.T) {
	const headerSecret = "Bearer upstream-secret-value-123"
	price := 0.5
	eps := []*config.Endpoint{{
		Path:           "/v1/ocr",
		Target:         &url.URL{Scheme: "https", Host: "ocr.example", Path: "/v1", RawQuery: "api_key=query-secret"},
		IncludeSubpath: true,
		Auth:           true,
		Methods:        []string{"POST"},
		Headers:        http.Header{"Authorization": {headerSecret}, "X-Org": {"org-secret"}},
		Timeout:        30 * time.Second,
		CostPerRequest: 0.01,
		Metering: config.Metering{Prices: config.TokenPrices{InputCostPerToken: 1e-6, OutputCostPerToken: 2e-6},
			ModelCosts: map[string]config.TokenPrices{"gpt-x": {InputCostPerToken: 3e-6, CacheReadInputTokenCost: &price}}},
	}, {
		Path: "/public", Target: &url.URL{Scheme: "https", Host: "pub.example"}, Methods: []string{"GET"},
	}}
	loaded := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := New(Options{Config: ConfigInfo{
		Endpoints: func() []*config.Endpoint { return eps },
		Status: func() config.Status {
			return config.Status{Source: "ssm parameter /keyway/config", LoadedAt: loaded, CheckedAt: loaded.Add(time.Minute)}
		},
	}})
	serve := func(p *auth.Principal, query string) (int, string) {
		r := httptest.NewRequest("GET", "/config/pass_through_endpoint"+query, nil)
		r = r.WithContext(auth.NewContext(r.Context(), p))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	master := &auth.Principal{Kind: auth.Master, Role: keys.RoleProxyAdmin}
	viewer := &auth.Principal{Kind: auth.VirtualKey, Role: keys.RoleProxyAdminViewer, Key: &keys.Key{Token: "t1", UserID: "v"}}
	user := &auth.Principal{Kind: auth.VirtualKey, Role: keys.RoleInternalUser, Key: &keys.Key{Token: "t2", UserID: "u"}}
	service := &auth.Principal{Kind: auth.VirtualKey, Role: keys.RoleInternalUser, Key: &keys.Key{Token: "t3"}}

	for name, p := range map[string]*auth.Principal{"master": master, "proxy_admin_viewer": viewer} {
		t.Run(name, func(t *testing.T) {
			code, body := serve(p, "")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			for _, secret := range []string{headerSecret, "upstream-secret-value", "org-secret", "query-secret"} {
				if strings.Contains(body, secret) {
					t.Errorf("response contains a header or query value %q: %s", secret, body)
				}
			}
			var got struct {
				Endpoints []map[string]any `json:"endpoints"`
				Status    map[string]any   `json:"keyway_status"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Endpoints) != 2 {
				t.Fatalf("got %d endpoints; want 2", len(got.Endpoints))
			}
			ep := got.Endpoints[0]
			if ep["path"] != "/v1/ocr" || ep["target"] != "https://ocr.example/v1" || ep["auth"] != true || ep["cost_per_request"] != 0.01 {
				t.Errorf("endpoint %v", ep)
			}
			if names, _ := ep["header_names"].([]any); len(names) != 2 || names[0] != "Authorization" {
				t.Errorf("header_names %v; want [Authorization X-Org]", ep["header_names"])
			}
			kw, _ := ep["keyway"].(map[string]any)
			if kw["input_cost_per_token"] != 1e-6 || kw["usage"] != "auto" || kw["model_costs"] == nil {
				t.Errorf("keyway pricing %v", kw)
			}
			if got.Status["source"] != "ssm parameter /keyway/config" || got.Status["loaded_at"] != "2026-03-01T12:00:00Z" {
				t.Errorf("status %v", got.Status)
			}
		})
	}
	for name, p := range map[string]*auth.Principal{"internal_user": user, "service key": service} {
		t.Run(name, func(t *testing.T) {
			code, body := serve(p, "")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			for _, hidden := range []string{"ocr.example", "Authorization", "ssm parameter", "header_names", `"target"`} {
				if strings.Contains(body, hidden) {
					t.Errorf("a non-admin sees %q: %s", hidden, body)
				}
			}
			if !strings.Contains(body, `"/v1/ocr"`) || !strings.Contains(body, `"loaded_at"`) {
				t.Errorf("a non-admin should see paths and load times: %s", body)
			}
		})
	}
	t.Run("endpoint_id", func(t *testing.T) {
		code, body := serve(master, "?endpoint_id=/public")
		if code != 200 || !strings.Contains(body, `"/public"`) || strings.Contains(body, "/v1/ocr") {
			t.Errorf("status %d body %s; want only /public", code, body)
		}
		if code, body = serve(master, "?endpoint_id=/nope"); code != 404 || !strings.Contains(body, `"param":"endpoint_id"`) {
			t.Errorf("unknown endpoint_id: status %d body %s; want 404 naming endpoint_id", code, body)
		}
		if code, _ = serve(master, "?bogus=1"); code != 400 {
			t.Errorf("unknown query parameter: status %d; want 400", code)
		}
	})
	t.Run("POST", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/config/pass_through_endpoint", nil)
		r = r.WithContext(auth.NewContext(r.Context(), master))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 405 {
			t.Errorf("status %d; want 405", w.Code)
		}
	})
	t.Run("no config wired", func(t *testing.T) {
		h := New(Options{})
		r := httptest.NewRequest("GET", "/config/pass_through_endpoint", nil)
		r = r.WithContext(auth.NewContext(r.Context(), master))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"endpoints":[]`) {
			t.Errorf("status %d body %s; want an empty list", w.Code, w.Body.String())
		}
	})
}
