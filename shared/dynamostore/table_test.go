package dynamostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
)

// tableShape is the part of a table description the three definitions
// (TableInput, create-table.sh, template.yaml) must agree on.
func tableShape(t *testing.T, client *dynamodb.Client, table string) string {
	t.Helper()
	ctx := context.Background()
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	tb := d.Table
	shape := struct {
		Attrs   []string
		Key     []string
		Indexes []string
		Billing string
		TTL     string
	}{TTL: string(ttl.TimeToLiveDescription.TimeToLiveStatus) + " " + aws.ToString(ttl.TimeToLiveDescription.AttributeName)}
	for _, a := range tb.AttributeDefinitions {
		shape.Attrs = append(shape.Attrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	slices.Sort(shape.Attrs)
	keyStr := func(ks []types.KeySchemaElement) string {
		var s []string
		for _, k := range ks {
			s = append(s, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		return strings.Join(s, ",")
	}
	shape.Key = []string{keyStr(tb.KeySchema)}
	for _, g := range tb.GlobalSecondaryIndexes {
		shape.Indexes = append(shape.Indexes, aws.ToString(g.IndexName)+"("+keyStr(g.KeySchema)+") "+string(g.Projection.ProjectionType))
	}
	slices.Sort(shape.Indexes)
	if tb.BillingModeSummary != nil {
		shape.Billing = string(tb.BillingModeSummary.BillingMode)
	}
	b, _ := json.MarshalIndent(shape, "", "  ")
	return string(b)
}

func TestCreateTableScriptMatchesCreateTable(t *testing.T) {
	t.Parallel() // mostly aws CLI start-up time
	srv := awstest.Start(t)
	client, table := awstest.NewTable(t, srv)
	want := tableShape(t, client, table)
	for _, part := range []string{`"pk:HASH,sk:RANGE"`, `gsi1(gsi1pk:HASH,gsi1sk:RANGE) ALL`, `gsi2(gsi2pk:HASH,gsi2sk:RANGE) ALL`, `PAY_PER_REQUEST`, `ENABLED ttl`} {
		if !strings.Contains(want, part) {
			t.Errorf("CreateTable's table lacks %s:\n%s", part, want)
		}
	}

	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not on PATH: infra/dynamodb/create-table.sh not exercised (CreateTable checked above)")
	}
	script, err := filepath.Abs("../../infra/dynamodb/create-table.sh")
	if err != nil {
		t.Fatal(err)
	}
	scripted := awstest.UniqueName(t, "keyway-script")
	cmd := exec.Command(script, scripted)
	cmd.Env = append(srv.Environ(), "AWS_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, scripted, err, out)
	}
	if got := tableShape(t, client, scripted); got != want {
		t.Errorf("create-table.sh made a different table:\n got %s\nwant %s", got, want)
	}
}

// TestTemplateMatchesTableInput keeps template.yaml's KeysTable and
// TableInput identical.
func TestTemplateMatchesTableInput(t *testing.T) {
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatalf("reading template.yaml: %v", err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				BillingMode string              `yaml:"BillingMode"`
				AttrDefs    []map[string]string `yaml:"AttributeDefinitions"`
				KeySchema   []map[string]string `yaml:"KeySchema"`
				GSIs        []struct {
					IndexName  string              `yaml:"IndexName"`
					KeySchema  []map[string]string `yaml:"KeySchema"`
					Projection map[string]string   `yaml:"Projection"`
				} `yaml:"GlobalSecondaryIndexes"`
				TTL map[string]any `yaml:"TimeToLiveSpecification"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parsing template.yaml: %v", err)
	}
	var found bool
	for name, r := range doc.Resources {
		if r.Type != "AWS::DynamoDB::Table" {
			continue
		}
		found = true
		p := r.Properties
		in := dynamostore.TableInput("x")
		var got, want []string
		for _, a := range p.AttrDefs {
			got = append(got, "attr "+a["AttributeName"]+":"+a["AttributeType"])
		}
		for _, a := range in.AttributeDefinitions {
			want = append(want, "attr "+aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
		}
		ks := func(prefix string, tmpl []map[string]string, ref []types.KeySchemaElement) {
			for _, k := range tmpl {
				got = append(got, prefix+k["AttributeName"]+":"+k["KeyType"])
			}
			for _, k := range ref {
				want = append(want, prefix+aws.ToString(k.AttributeName)+":"+string(k.KeyType))
			}
		}
		ks("key ", p.KeySchema, in.KeySchema)
		for _, g := range p.GSIs {
			got = append(got, "index "+g.IndexName+" "+g.Projection["ProjectionType"])
			ks("index "+g.IndexName+" key ", g.KeySchema, nil)
		}
		for _, g := range in.GlobalSecondaryIndexes {
			want = append(want, "index "+aws.ToString(g.IndexName)+" "+string(g.Projection.ProjectionType))
			ks("index "+aws.ToString(g.IndexName)+" key ", nil, g.KeySchema)
		}
		got = append(got, "billing "+p.BillingMode, "ttl "+fmt.Sprint(p.TTL["AttributeName"], " ", p.TTL["Enabled"]))
		want = append(want, "billing "+string(in.BillingMode), "ttl ttl true")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("template.yaml %s differs from dynamostore.TableInput:\n got %q\nwant %q", name, got, want)
		}
	}
	if !found {
		t.Errorf("template.yaml declares no AWS::DynamoDB::Table")
	}
}
