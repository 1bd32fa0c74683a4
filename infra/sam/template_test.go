package sam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/dynamostore"
)

const templatePath = "../../template.yaml"

// TestCfnLint runs `cfn-lint template.yaml` (which runs the SAM transform
// first) and fails with its findings. cfn-lint is looked up on PATH, then as
// `python3 -m cfnlint`, then installed with pip, as README.md promises.
func TestCfnLint(t *testing.T) {
	argv, err := cfnLint()
	if err != nil {
		t.Fatalf("cfn-lint is needed to check template.yaml and could not be found or installed: %v\n"+
			"install it with: python3 -m pip install cfn-lint", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--", "template.yaml")...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s template.yaml: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func cfnLint() ([]string, error) {
	if p, err := exec.LookPath("cfn-lint"); err == nil {
		return []string{p}, nil
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, errors.New("neither cfn-lint nor python3 is on PATH")
	}
	module := []string{py, "-m", "cfnlint"}
	if exec.Command(py, "-c", "import cfnlint").Run() == nil {
		return module, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "sam: cfn-lint not found; running python3 -m pip install cfn-lint")
	if out, err := exec.CommandContext(ctx, py, "-m", "pip", "install", "--quiet", "cfn-lint").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pip install cfn-lint: %v: %s", err, out)
	}
	return module, nil
}

// template is the part of template.yaml these tests read. CloudFormation
// short-form tags (!Ref, !Sub, !GetAtt) decode as the tagged scalar.
type template struct {
	Resources map[string]struct {
		Type       string         `yaml:"Type"`
		Metadata   map[string]any `yaml:"Metadata"`
		Properties yaml.Node      `yaml:"Properties"`
	} `yaml:"Resources"`
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return tpl
}

func props[T any](t *testing.T, tpl template, name string) T {
	t.Helper()
	r, ok := tpl.Resources[name]
	if !ok {
		t.Fatalf("template.yaml has no resource %s", name)
	}
	var v T
	if err := r.Properties.Decode(&v); err != nil {
		t.Fatalf("%s properties: %v", name, err)
	}
	return v
}

// TestFunctionAndAPI pins what the Lambda path depends on: the streaming
// integration on both routes, a timeout that lets 15-minute streams live,
// the runtime and architecture the Makefile builds for, and stream mode.
func TestFunctionAndAPI(t *testing.T) {
	tpl := loadTemplate(t)
	fn := tpl.Resources["GatewayFunction"]
	if fn.Type != "AWS::Serverless::Function" || fn.Metadata["BuildMethod"] != "makefile" {
		t.Errorf("GatewayFunction: type %q, BuildMethod %v; want a makefile-built AWS::Serverless::Function", fn.Type, fn.Metadata["BuildMethod"])
	}
	p := props[struct {
		Runtime       string   `yaml:"Runtime"`
		Handler       string   `yaml:"Handler"`
		Architectures []string `yaml:"Architectures"`
		Timeout       int      `yaml:"Timeout"`
		Environment   struct {
			Variables map[string]string `yaml:"Variables"`
		} `yaml:"Environment"`
		Events map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Path                 string `yaml:"Path"`
				Method               string `yaml:"Method"`
				ResponseTransferMode string `yaml:"ResponseTransferMode"`
				TimeoutInMillis      int    `yaml:"TimeoutInMillis"`
			} `yaml:"Properties"`
		} `yaml:"Events"`
	}](t, tpl, "GatewayFunction")
	if p.Runtime != "provided.al2023" || p.Handler != "bootstrap" || !slices.Equal(p.Architectures, []string{"arm64"}) {
		t.Errorf("runtime %q handler %q architectures %v; want provided.al2023, bootstrap, [arm64]", p.Runtime, p.Handler, p.Architectures)
	}
	if p.Timeout != 900 {
		t.Errorf("function timeout %d s; want 900 (API Gateway streams for up to 15 minutes)", p.Timeout)
	}
	env := p.Environment.Variables
	for k, want := range map[string]string{
		"KEYWAY_CONFIG":             "ssm:${ConfigParameterName}",
		"KEYWAY_STORE":              "dynamodb:${KeysTable}",
		"KEYWAY_SECRETS_SSM_PREFIX": "SecretsPrefix",
		"KEYWAY_RESPONSE_MODE":      "stream",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q; want %q", k, env[k], want)
		}
	}
	paths := map[string]bool{}
	for name, ev := range p.Events {
		if ev.Type != "Api" || ev.Properties.Method != "ANY" {
			t.Errorf("event %s: %s %s; want an ANY Api event", name, ev.Type, ev.Properties.Method)
		}
		if ev.Properties.ResponseTransferMode != "RESPONSE_STREAM" || ev.Properties.TimeoutInMillis != 900000 {
			t.Errorf("event %s: transfer mode %q, integration timeout %d ms; want RESPONSE_STREAM, 900000",
				name, ev.Properties.ResponseTransferMode, ev.Properties.TimeoutInMillis)
		}
		paths[ev.Properties.Path] = true
	}
	if len(paths) != 2 || !paths["/"] || !paths["/{proxy+}"] {
		t.Errorf("routes %v; want / and /{proxy+}", paths)
	}

	api := props[struct {
		EndpointConfiguration struct {
			Type string `yaml:"Type"`
		} `yaml:"EndpointConfiguration"`
	}](t, tpl, "GatewayApi")
	if tpl.Resources["GatewayApi"].Type != "AWS::Serverless::Api" || api.EndpointConfiguration.Type != "REGIONAL" {
		t.Errorf("GatewayApi: %s %s; want a REGIONAL AWS::Serverless::Api", tpl.Resources["GatewayApi"].Type, api.EndpointConfiguration.Type)
	}
}

// TestKeysTableMatchesStore: the table the stack creates is the one the
// DynamoDB store (and its tests on moto) create with
// dynamostore.TableInput.
func TestKeysTableMatchesStore(t *testing.T) {
	tpl := loadTemplate(t)
	type keyElem struct {
		AttributeName string `yaml:"AttributeName"`
		KeyType       string `yaml:"KeyType"`
	}
	p := props[struct {
		BillingMode          string `yaml:"BillingMode"`
		AttributeDefinitions []struct {
			AttributeName string `yaml:"AttributeName"`
			AttributeType string `yaml:"AttributeType"`
		} `yaml:"AttributeDefinitions"`
		KeySchema              []keyElem `yaml:"KeySchema"`
		GlobalSecondaryIndexes []struct {
			IndexName  string    `yaml:"IndexName"`
			KeySchema  []keyElem `yaml:"KeySchema"`
			Projection struct {
				ProjectionType string `yaml:"ProjectionType"`
			} `yaml:"Projection"`
		} `yaml:"GlobalSecondaryIndexes"`
		TimeToLiveSpecification struct {
			AttributeName string `yaml:"AttributeName"`
			Enabled       bool   `yaml:"Enabled"`
		} `yaml:"TimeToLiveSpecification"`
		PointInTimeRecoverySpecification struct {
			PointInTimeRecoveryEnabled bool `yaml:"PointInTimeRecoveryEnabled"`
		} `yaml:"PointInTimeRecoverySpecification"`
	}](t, tpl, "KeysTable")

	ref := dynamostore.TableInput("x")
	keys := func(ks []types.KeySchemaElement) []keyElem {
		var out []keyElem
		for _, k := range ks {
			out = append(out, keyElem{*k.AttributeName, string(k.KeyType)})
		}
		return out
	}
	if p.BillingMode != string(ref.BillingMode) {
		t.Errorf("billing mode %q; want %q", p.BillingMode, ref.BillingMode)
	}
	var gotAttrs, wantAttrs []string
	for _, a := range p.AttributeDefinitions {
		gotAttrs = append(gotAttrs, a.AttributeName+":"+a.AttributeType)
	}
	for _, a := range ref.AttributeDefinitions {
		wantAttrs = append(wantAttrs, *a.AttributeName+":"+string(a.AttributeType))
	}
	slices.Sort(gotAttrs)
	slices.Sort(wantAttrs)
	if !slices.Equal(gotAttrs, wantAttrs) {
		t.Errorf("attribute definitions %v; want %v", gotAttrs, wantAttrs)
	}
	if !slices.Equal(p.KeySchema, keys(ref.KeySchema)) {
		t.Errorf("key schema %v; want %v", p.KeySchema, keys(ref.KeySchema))
	}
	if len(p.GlobalSecondaryIndexes) != len(ref.GlobalSecondaryIndexes) {
		t.Fatalf("%d GSIs; want %d", len(p.GlobalSecondaryIndexes), len(ref.GlobalSecondaryIndexes))
	}
	for i, want := range ref.GlobalSecondaryIndexes {
		got := p.GlobalSecondaryIndexes[i]
		if got.IndexName != *want.IndexName || !slices.Equal(got.KeySchema, keys(want.KeySchema)) ||
			got.Projection.ProjectionType != string(want.Projection.ProjectionType) {
			t.Errorf("GSI %d: %+v; want %s %v %s", i, got, *want.IndexName, keys(want.KeySchema), want.Projection.ProjectionType)
		}
	}
	if p.TimeToLiveSpecification.AttributeName != "ttl" || !p.TimeToLiveSpecification.Enabled {
		t.Errorf("TTL %+v; want enabled on ttl", p.TimeToLiveSpecification)
	}
	if !p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		t.Errorf("point-in-time recovery is off")
	}
}

// TestSAMLocalEnv: `sam local start-api` cannot stream, so the env-vars
// file selects buffered mode, and it only overrides variables the template
// declares.
func TestSAMLocalEnv(t *testing.T) {
	b, err := os.ReadFile("env.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("env.json: %v", err)
	}
	fn, ok := env["GatewayFunction"]
	if !ok {
		t.Fatalf("env.json has no GatewayFunction entry")
	}
	if fn["KEYWAY_RESPONSE_MODE"] != "buffered" {
		t.Errorf("KEYWAY_RESPONSE_MODE = %q; want buffered", fn["KEYWAY_RESPONSE_MODE"])
	}
	declared := props[struct {
		Environment struct {
			Variables map[string]any `yaml:"Variables"`
		} `yaml:"Environment"`
	}](t, loadTemplate(t), "GatewayFunction").Environment.Variables
	for k := range fn {
		if _, ok := declared[k]; !ok {
			t.Errorf("env.json sets %s, which template.yaml does not declare: sam local would ignore it", k)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "samconfig.toml")); err != nil {
		t.Errorf("samconfig.toml: %v", err)
	}
}

// samStages is run by python3: it applies the SAM transform as cfn-lint does
// (cfn-lint's own Transform, which drives the samtranslator package cfn-lint
// installs) and prints every API Gateway stage the stack would create — the
// AWS::ApiGateway::Stage resources and any Deployment's StageName — as JSON.
const samStages = `
import json, sys
from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform
tpl, problems = decode(sys.argv[1])
if problems:
    sys.exit("decoding %s: %s" % (sys.argv[1], problems))
tr = Transform(sys.argv[1], tpl, "us-east-1")
errors = tr.transform_template()
if errors:
    sys.exit("SAM transform: %s" % errors)
out = []
for name, res in tr._template["Resources"].items():
    props = res.get("Properties") or {}
    if res["Type"] == "AWS::ApiGateway::Stage":
        out.append({"resource": name, "type": res["Type"], "stage": props.get("StageName")})
    if res["Type"] == "AWS::ApiGateway::Deployment" and "StageName" in props:
        out.append({"resource": name, "type": res["Type"], "stage": props["StageName"]})
print(json.dumps(out))
`

// TestSAMTransformHasNoStrayStage: the transformed template has exactly one
// stage, the StageName parameter's. Without OpenApiVersion the transform
// gives the Deployment a StageName of "Stage", which creates a second live
// stage (…/Stage/…) beside …/prod/….
func TestSAMTransformHasNoStrayStage(t *testing.T) {
	if _, err := cfnLint(); err != nil {
		t.Fatalf("cfn-lint (and the SAM translator it installs) is needed: %v", err)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to run the SAM transform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", samStages, templatePath)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("SAM transform: %v\n%s", err, stderr.String())
	}
	var stages []struct {
		Resource, Type string
		Stage          any
	}
	if err := json.Unmarshal(out, &stages); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(stages) != 1 || stages[0].Type != "AWS::ApiGateway::Stage" {
		t.Fatalf("stages after the SAM transform: %+v; want exactly one AWS::ApiGateway::Stage (no Deployment StageName such as \"Stage\")", stages)
	}
	if ref, _ := stages[0].Stage.(map[string]any); ref["Ref"] != "StageName" {
		t.Errorf("the stage is named %v; want {Ref: StageName}", stages[0].Stage)
	}
}

// TestSAMConfigProductionDoesNotWatch: `sam sync --watch` redeploys on
// every save without a change set; only the dev environment may turn it on,
// and it deploys a stack of its own.
func TestSAMConfigProductionDoesNotWatch(t *testing.T) {
	b, err := os.ReadFile("../../samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	values := map[string]string{} // "section key" -> value
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			values[section+" "+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if v := values["default.sync.parameters watch"]; v == "true" {
		t.Errorf("the default (production) environment turns on sam sync watch")
	}
	if v := values["dev.sync.parameters watch"]; v != "true" {
		t.Errorf("dev sync watch = %q; want true", v)
	}
	if dev, prod := values["dev.global.parameters stack_name"], values["default.global.parameters stack_name"]; dev == "" || dev == prod {
		t.Errorf("dev stack %q, production stack %q; want a separate dev stack", dev, prod)
	}
}
