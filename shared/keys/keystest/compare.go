package keystest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// same reports every field where got differs from want, under the
// round-trip rules in the package doc.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

// sameTokens compares token lists, in order, naming tokens by fixture name.
func sameTokens(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v; want %v", what, labels(got), labels(want))
	}
}

// sameTokenSet compares token lists as sets.
func sameTokenSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	sameTokens(t, what+" (as a set)", g, w)
}

// diff returns "Field: got …; want …" for each difference between got and
// want, which must have the same type.
func diff(got, want any) []string {
	var out []string
	diffValue(&out, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return out
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(out *[]string, path string, got, want reflect.Value) {
	report := func() {
		name := path
		if name == "" {
			name = "value"
		}
		*out = append(*out, fmt.Sprintf("%s: got %s; want %s", name, show(got), show(want)))
	}
	switch {
	case got.Type() == timeType:
		g := got.Interface().(time.Time).Truncate(time.Microsecond)
		w := want.Interface().(time.Time).Truncate(time.Microsecond)
		if !g.Equal(w) {
			report()
		}
	case got.Kind() == reflect.Pointer:
		switch {
		case got.IsNil() && want.IsNil():
		case got.IsNil() || want.IsNil():
			report()
		default:
			diffValue(out, path, got.Elem(), want.Elem())
		}
	case got.Kind() == reflect.Struct:
		for i := range got.NumField() {
			f := got.Type().Field(i)
			if !f.IsExported() || f.Name == "Version" {
				continue // versions are checked by the versioning tests
			}
			p := f.Name
			if path != "" {
				p = path + "." + f.Name
			}
			diffValue(out, p, got.Field(i), want.Field(i))
		}
	case got.Kind() == reflect.Slice:
		if got.Len() == 0 && want.Len() == 0 {
			return // nil and empty are the same value
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			report()
		}
	case got.Kind() == reflect.Map:
		if got.Len() == 0 && want.Len() == 0 {
			return
		}
		if canonical(got) != canonical(want) {
			report()
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			report()
		}
	}
}

// canonical is v as JSON with sorted map keys, so that 3 and 3.0 and any
// numeric type a store returns for a JSON number compare equal.
func canonical(v reflect.Value) string {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprintf("unencodable %#v: %v", v.Interface(), err)
	}
	return string(b)
}

func show(v reflect.Value) string {
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return show(v.Elem())
	case v.Type() == timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	case v.Kind() == reflect.Map || v.Kind() == reflect.Slice:
		if v.IsNil() {
			return "nil"
		}
		return canonical(v)
	case v.Kind() == reflect.String:
		if s := v.String(); len(s) == 64 {
			return label(s)
		}
		return fmt.Sprintf("%q", v.String())
	default:
		return fmt.Sprintf("%v", v.Interface())
	}
}
