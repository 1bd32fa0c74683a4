package route

import (
	"net/url"
	"testing"

	"github.com/keywaygw/keyway/shared/config"
)

func endpoint(path string, subpath bool) *config.Endpoint {
	return &config.Endpoint{Path: path, IncludeSubpath: subpath, Auth: true, Target: &url.URL{Scheme: "https", Host: "up.example"}}
}

func TestClassifyPath(t *testing.T) {
	ocr := endpoint("/v1/ocr", true)
	v1 := endpoint("/v1", true)
	exact := endpoint("/v1/exact", false)
	table := New([]*config.Endpoint{v1, exact, ocr}) // config order is not match order

	tests := []struct {
		path    string
		class   Class
		ep      *config.Endpoint
		subpath string
	}{
		{"/key/generate", Admin, nil, ""},
		{"/key", Admin, nil, ""},
		{"/user/new", Admin, nil, ""},
		{"/team/list", Admin, nil, ""},
		{"/spend/logs", Admin, nil, ""},
		{"/global/spend/report", Admin, nil, ""},
		{"/keys", Unknown, nil, ""}, // segment boundary: not the admin /key
		{"/health", Health, nil, ""},
		{"/health/liveliness", Health, nil, ""},
		{"/healthz", Unknown, nil, ""},
		{"/metrics", Metrics, nil, ""},
		{"/metricsx", Unknown, nil, ""},
		{"/config/pass_through_endpoint", Admin, nil, ""},
		{"/configx", Unknown, nil, ""},
		{"/ui", Console, nil, ""},
		{"/ui/", Console, nil, ""},
		{"/ui/assets/app.js", Console, nil, ""},
		{"/uix", Unknown, nil, ""},
		{"/v1/ocr", PassThrough, ocr, ""},
		{"/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer", PassThrough, ocr, "/company/community/nemoretriever-ocr-v1/v1/infer"},
		{"/v1/ocrx", PassThrough, v1, "/ocrx"}, // longest match at a segment boundary
		{"/v1/exact", PassThrough, exact, ""},
		{"/v1/exact/", PassThrough, exact, ""},
		{"/v1/exact/more", PassThrough, v1, "/exact/more"}, // exact-only endpoint falls through to /v1
		{"/v1/ocr%2Fx", PassThrough, v1, "/ocr%2Fx"},       // an encoded slash is not a boundary
		{"/v2", Unknown, nil, ""},
		{"/", Unknown, nil, ""},
		{"", Unknown, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got := table.ClassifyPath(tc.path)
			if got.Class != tc.class || got.Endpoint != tc.ep || got.Subpath != tc.subpath {
				gotPath := ""
				if got.Endpoint != nil {
					gotPath = got.Endpoint.Path
				}
				t.Errorf("ClassifyPath(%q) = %v %q subpath %q; want %v %v subpath %q", tc.path, got.Class, gotPath, got.Subpath, tc.class, tc.ep != nil, tc.subpath)
			}
		})
	}
}

func TestExactOnlyEndpointDoesNotServeSubpaths(t *testing.T) {
	table := New([]*config.Endpoint{endpoint("/v1/exact", false)})
	if got := table.ClassifyPath("/v1/exact/child"); got.Class != Unknown {
		t.Errorf("got %v; want unknown: include_subpath false serves the exact path only", got.Class)
	}
}

func TestMatchesPrefix(t *testing.T) {
	tests := []struct {
		path, pattern string
		want          bool
	}{
		{"/v1/ocr", "/v1/ocr", true},
		{"/v1/ocr/x", "/v1/ocr", true},
		{"/v1/ocrx", "/v1/ocr", false},
		{"/v1/ocr/x", "/v1/ocr/", true},
		{"/v1/ocr/x", "/v1/ocr/*", true},
		{"/v1/ocrx", "/v1/ocr/*", false},
		{"/v1/ocrx", "/v1/ocr*", true}, // an explicit wildcard is a plain prefix
		{"/anything", "*", true},
		{"/anything", "/", true},
		{"/v2/ocr", "/v1/ocr", false},
		{"/v1", "/v1/ocr", false},
	}
	for _, tc := range tests {
		if got := MatchesPrefix(tc.path, tc.pattern); got != tc.want {
			t.Errorf("MatchesPrefix(%q, %q) = %v; want %v", tc.path, tc.pattern, got, tc.want)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	eps := []*config.Endpoint{endpoint("/v1/ocr", true), endpoint("/v1/chat", true), endpoint("/public/echo", false), endpoint("/v2/embed", true)}
	table := New(eps)
	b.ReportAllocs()
	for b.Loop() {
		table.ClassifyPath("/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer")
	}
}
