package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the small YAML-node helpers the parser is built from. The
// parser walks yaml.Node trees rather than decoding into structs so that it
// can report every problem with the item's name, the field and the line, and
// so that unknown and duplicated keys are never silently dropped.

// field is one key/value pair of a mapping, aliases resolved.
type field struct {
	key  string
	k, v *yaml.Node
}

// deref follows YAML aliases (*anchor) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names a node's YAML type for "wrong type" messages. It never
// shows the value: a mistyped master_key or header is still a secret.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	}
	switch n.Tag {
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	}
	return "a string"
}

// fields returns the pairs of mapping m in document order, with YAML merge
// keys (<<: *base) expanded as yaml.v3's decoder would: explicit keys win,
// then earlier merges. A key written twice is reported (JSON and YAML
// parsers disagree on which one wins) and only the first is kept.
func (p *parser) fields(where string, m *yaml.Node) []field {
	var out []field
	seen := map[string]bool{}
	// Each merged mapping is expanded once: a mapping merged again adds no
	// keys, and expanding it again would let nested anchors grow without
	// bound (a "billion laughs" document).
	expanded := map[*yaml.Node]bool{m: true}
	var walk func(m *yaml.Node, report bool)
	walk = func(m *yaml.Node, report bool) {
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := deref(m.Content[i]), deref(m.Content[i+1])
			switch {
			case k.Kind != yaml.ScalarNode:
				if report {
					p.addf("%s: line %d: a key must be a plain name, got %s", where, k.Line, describe(k))
				}
			case k.Tag == "!!merge":
				merges = append(merges, v)
			case seen[k.Value]:
				if report {
					p.addf("%s: field %q is set twice (line %d)", where, k.Value, k.Line)
				}
			default:
				seen[k.Value] = true
				out = append(out, field{key: k.Value, k: k, v: v})
			}
		}
		for _, mv := range merges {
			sources := []*yaml.Node{mv}
			if mv.Kind == yaml.SequenceNode {
				sources = sources[:0]
				for _, s := range mv.Content {
					sources = append(sources, deref(s))
				}
			}
			for _, s := range sources {
				if s.Kind != yaml.MappingNode {
					if report {
						p.addf("%s: line %d: a merge (<<) must refer to a mapping", where, mv.Line)
					}
					continue
				}
				if !expanded[s] {
					expanded[s] = true
					// Merged keys that repeat explicit ones are overrides,
					// not mistakes.
					walk(s, false)
				}
			}
		}
	}
	walk(m, true)
	return out
}

// The decoders below read one typed scalar and report a problem naming the
// field when the node has another type. ok is false after a problem.

func (p *parser) str(field string, n *yaml.Node) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.addf("%s must be a string, got %s", field, describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(field string, n *yaml.Node) (bool, bool) {
	n = deref(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.addf("%s must be true or false, got %s", field, describe(n))
		return false, false
	}
	return b, true
}

// number reads a finite int or float.
func (p *parser) number(field string, n *yaml.Node) (float64, bool) {
	n = deref(n)
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		p.addf("%s must be a number, got %s", field, describe(n))
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		p.addf("%s must be a finite number", field)
		return 0, false
	}
	return f, true
}

func (p *parser) integer(field string, n *yaml.Node) (int64, bool) {
	n = deref(n)
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		p.addf("%s must be a whole number, got %s", field, describe(n))
		return 0, false
	}
	return i, true
}

// duration reads a Go duration string such as "5s" or "1m30s".
func (p *parser) duration(field string, n *yaml.Node) (time.Duration, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.addf("%s must be a duration such as \"5s\" or \"1m\", got %s", field, describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.addf("%s: %q is not a duration such as \"5s\" or \"1m\"", field, truncate(n.Value))
		return 0, false
	}
	return d, true
}

// seconds converts a number of seconds to a Duration, refusing values a
// Duration cannot hold.
func seconds(s float64) (time.Duration, bool) {
	if s > float64(math.MaxInt64)/float64(time.Second) {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// truncate shortens a user-supplied (non-secret) value for a message.
func truncate(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}

// suggest returns ` (did you mean "x"?)` for a near-miss field name, or the
// list of known fields when nothing is close.
func suggest(got string, known []string) string {
	if best := closest(got, known); best != "" {
		return " (did you mean " + strconv.Quote(best) + "?)"
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

// closest returns the known name within edit distance 2 of got
// (case-insensitively), or "".
func closest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(got), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// plural is "1 problem" / "2 problems".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
