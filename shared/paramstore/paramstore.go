// Package paramstore reads Keyway's configuration and upstream secrets from
// AWS Systems Manager Parameter Store.
//
//   - ConfigSource is the config.Source for KEYWAY_CONFIG=ssm:/name: one
//     parameter, String or SecureString (decrypted), holding the YAML or JSON
//     document.
//   - SecretLookup reads the SecureString PREFIX/NAME for an os.environ/NAME
//     reference that the environment does not define (package secrets,
//     KEYWAY_SECRETS_SSM_PREFIX).
//
// Size: a standard-tier parameter holds 4 KB, an advanced-tier one 8 KB
// (advanced parameters cost a monthly fee). GetParameter reads either tier
// the same way, so an 8 KB config needs nothing but writing it with
// --tier Advanced (or Intelligent-Tiering). 8 KB is the hard limit of one
// parameter; Keyway reads its config from exactly one parameter and does
// not split it across several. A larger config must shrink (secrets are
// os.environ/NAME references, not values; LiteLLM sections Keyway ignores,
// such as model_list, can be left out) or be shipped as a file in the
// deployment package (KEYWAY_CONFIG=/var/task/PATH, changed by redeploying).
package paramstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/awsretry"
	"github.com/keywaygw/keyway/shared/config"
)

// Scheme starts a KEYWAY_CONFIG value that names an SSM parameter.
const Scheme = "ssm:"

// MaxValueBytes is the largest parameter value SSM stores (advanced tier).
const MaxValueBytes = 8192

// ParseRef returns the parameter name of an "ssm:/name" reference, and
// whether ref is one. The name may be empty ("ssm:"), which callers reject.
func ParseRef(ref string) (name string, ok bool) {
	if name, ok = strings.CutPrefix(ref, Scheme); !ok {
		return "", false
	}
	return name, true
}

// GetParameterAPI is the one SSM call this package makes; *ssm.Client
// implements it.
type GetParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// GetParametersAPI adds the batch read SecretLookup uses; *ssm.Client
// implements it.
type GetParametersAPI interface {
	GetParameterAPI
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// MaxNamesPerCall is how many names one GetParameters call may ask for.
const MaxNamesPerCall = 10

// ErrParameterNotFound is returned (wrapped) for a parameter that does not
// exist.
var ErrParameterNotFound = errors.New("parameter not found")

// get reads one parameter with decryption. Its errors name the parameter,
// never its value.
func get(ctx context.Context, client GetParameterAPI, name string) (*types.Parameter, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var nf *types.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return nil, fmt.Errorf("ssm parameter %s: %w", name, ErrParameterNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading ssm parameter %s: %w", name, err)
	case out.Parameter == nil || out.Parameter.Value == nil:
		return nil, fmt.Errorf("reading ssm parameter %s: empty answer", name)
	}
	return out.Parameter, nil
}

// ConfigSource is a config.Source reading one SSM parameter (String or
// SecureString, decrypted) that holds the config document, YAML or JSON. It
// is read at start-up and on every reload, so a change to the parameter
// takes effect within KEYWAY_CONFIG_TTL without a redeploy.
//
// Parameters hold at most 4 KB (standard tier) or 8 KB (advanced tier); both
// are read the same way. See the package documentation for larger configs.
type ConfigSource struct {
	client GetParameterAPI
	name   string
}

var _ config.Source = (*ConfigSource)(nil)

// NewConfigSource returns the source for parameter name (such as
// "/keyway/config"). Build client with NewClient for bounded retries.
func NewConfigSource(client GetParameterAPI, name string) *ConfigSource {
	return &ConfigSource{client: client, name: name}
}

// Read implements config.Source.
func (s *ConfigSource) Read(ctx context.Context) ([]byte, error) {
	p, err := get(ctx, s.client, s.name)
	if err != nil {
		return nil, err
	}
	if p.Type == types.ParameterTypeStringList {
		return nil, fmt.Errorf("ssm parameter %s is a StringList; store the config as a String or SecureString", s.name)
	}
	return []byte(*p.Value), nil
}

// String implements config.Source: "ssm parameter /keyway/config".
func (s *ConfigSource) String() string { return "ssm parameter " + s.name }

// SecretLookup reads upstream secrets from SecureString parameters under a
// path prefix: NAME is the parameter PREFIX/NAME. It implements
// secrets.BatchLookup: a config load reads all its secrets with
// GetParameters, ten a call, so a load costs 1 + ceil(secrets/10) SSM calls
// (each SecureString is still one KMS decryption, done by SSM).
type SecretLookup struct {
	client GetParametersAPI
	prefix string
}

// NewSecretLookup returns a lookup under prefix (such as "/keyway/secrets";
// a trailing slash is ignored).
func NewSecretLookup(client GetParametersAPI, prefix string) *SecretLookup {
	return &SecretLookup{client: client, prefix: strings.TrimRight(prefix, "/")}
}

// Prefix is the path prefix, without a trailing slash.
func (l *SecretLookup) Prefix() string { return l.prefix }

// Lookup returns the decrypted value of PREFIX/name. A missing parameter is
// config.ErrSecretNotFound (wrapped). A parameter that is not a SecureString
// is refused: a secret stored in plain text is a mistake to fix, not to use.
// Errors name the parameter, never a value.
func (l *SecretLookup) Lookup(ctx context.Context, name string) (string, error) {
	param := l.prefix + "/" + name
	p, err := get(ctx, l.client, param)
	if errors.Is(err, ErrParameterNotFound) {
		return "", fmt.Errorf("ssm parameter %s: %w", param, config.ErrSecretNotFound)
	}
	if err != nil {
		return "", err
	}
	return secureValue(param, p)
}

// secureValue is p's value when p is a SecureString.
func secureValue(param string, p *types.Parameter) (string, error) {
	if p.Type != types.ParameterTypeSecureString {
		return "", fmt.Errorf("ssm parameter %s is a %s, not a SecureString; store secrets encrypted (aws ssm put-parameter --type SecureString)", param, p.Type)
	}
	return *p.Value, nil
}

// LookupAll reads PREFIX/name for every name with GetParameters, ten names a
// call, one call after another. Every name ends in exactly one of the two
// maps: its value, or an error as Lookup would return it (a missing
// parameter wraps config.ErrSecretNotFound; a failed call is the error of
// each of its names). Errors name parameters, never values.
func (l *SecretLookup) LookupAll(ctx context.Context, names []string) (map[string]string, map[string]error) {
	values := make(map[string]string, len(names))
	errs := map[string]error{}
	for batch := range slices.Chunk(names, MaxNamesPerCall) {
		byParam := make(map[string]string, len(batch))
		params := make([]string, 0, len(batch))
		for _, name := range batch {
			param := l.prefix + "/" + name
			if _, dup := byParam[param]; !dup {
				byParam[param] = name
				params = append(params, param)
			}
		}
		out, err := l.client.GetParameters(ctx, &ssm.GetParametersInput{Names: params, WithDecryption: aws.Bool(true)})
		if err != nil {
			for _, name := range batch {
				errs[name] = fmt.Errorf("reading ssm parameters %s: %w", strings.Join(params, ", "), err)
			}
			continue
		}
		for _, p := range out.Parameters {
			name, ok := byParam[aws.ToString(p.Name)]
			if !ok || p.Value == nil {
				continue
			}
			if v, err := secureValue(aws.ToString(p.Name), &p); err != nil {
				errs[name] = err
			} else {
				values[name] = v
			}
		}
		for param, name := range byParam {
			_, got := values[name]
			if _, failed := errs[name]; !got && !failed {
				errs[name] = fmt.Errorf("ssm parameter %s: %w", param, config.ErrSecretNotFound)
			}
		}
	}
	return values, errs
}

// Retry bounds one SSM call, retries included. Config reloads happen off
// the request path, but a first load blocks start-up, and a hung call would
// hold a reload forever.
type Retry = awsretry.Bounds

// DefaultRetry is what NewClient uses: 5 attempts of at most 3s, 1s to
// connect, a jittered exponential delay of at most 2s between attempts —
// about 23s per call at worst. Throttling (ThrottlingException: SSM's
// GetParameter/GetParameters quota is shared by every caller in the account
// and region) is retried like any transient error; the jitter spreads a
// burst of cold starts so that they do not retry in step.
var DefaultRetry = Retry{MaxAttempts: 5, AttemptTimeout: 3 * time.Second, DialTimeout: time.Second, MaxBackoff: 2 * time.Second}

// ClientOptions returns an ssm client option that bounds every call by r
// (zero fields take DefaultRetry's values).
func ClientOptions(r Retry) func(*ssm.Options) {
	r = r.WithDefaults(DefaultRetry)
	return func(o *ssm.Options) {
		o.Retryer = r.Retryer()
		o.HTTPClient = r.HTTPClient()
	}
}

// NewClient returns an SSM client for cfg (region, credentials, and
// AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL when cfg comes from
// config.LoadDefaultConfig) with DefaultRetry's bounds; optFns apply after.
func NewClient(cfg aws.Config, optFns ...func(*ssm.Options)) *ssm.Client {
	return ssm.NewFromConfig(cfg, append([]func(*ssm.Options){ClientOptions(DefaultRetry)}, optFns...)...)
}
