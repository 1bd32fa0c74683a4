package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CheckEMF parses line as a CloudWatch embedded metric format document and
// reports the first rule it breaks, as CloudWatch Logs would reject it:
// _aws.Timestamp in epoch milliseconds; CloudWatchMetrics directives each
// with a Namespace, 1–30 keys per dimension set and 1–100 metrics; every
// dimension key a top-level string member and every metric a top-level
// number. It returns the parsed document. Tests use it on real access lines.
func CheckEMF(line []byte) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	aws, ok := doc["_aws"].(map[string]any)
	if !ok {
		return doc, errors.New("no _aws object")
	}
	if ts, ok := aws["Timestamp"].(float64); !ok || ts < 1e12 {
		return doc, fmt.Errorf("_aws.Timestamp = %v; want epoch milliseconds", aws["Timestamp"])
	}
	dirs, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(dirs) == 0 {
		return doc, errors.New("_aws.CloudWatchMetrics missing or empty")
	}
	for i, d := range dirs {
		dir, ok := d.(map[string]any)
		if !ok {
			return doc, fmt.Errorf("directive %d is not an object", i)
		}
		if ns, _ := dir["Namespace"].(string); ns == "" {
			return doc, fmt.Errorf("directive %d has no Namespace", i)
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			return doc, fmt.Errorf("directive %d has no Dimensions array", i)
		}
		for _, s := range sets {
			keys, ok := s.([]any)
			if !ok || len(keys) == 0 || len(keys) > 30 {
				return doc, fmt.Errorf("directive %d: dimension set %v: want 1..30 keys", i, s)
			}
			for _, k := range keys {
				name, _ := k.(string)
				if v, ok := doc[name].(string); !ok || v == "" {
					return doc, fmt.Errorf("directive %d: dimension %v is not a top-level string member", i, k)
				}
			}
		}
		ms, ok := dir["Metrics"].([]any)
		if !ok || len(ms) == 0 || len(ms) > 100 {
			return doc, fmt.Errorf("directive %d: %d metrics; want 1..100", i, len(ms))
		}
		for _, m := range ms {
			def, _ := m.(map[string]any)
			name, _ := def["Name"].(string)
			if _, ok := doc[name].(float64); !ok {
				return doc, fmt.Errorf("directive %d: metric %q is not a top-level number", i, name)
			}
		}
	}
	return doc, nil
}
