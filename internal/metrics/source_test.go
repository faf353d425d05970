package metrics

import (
	"reflect"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// setAll sets every uint64 of c (fields and array elements) to its position
// plus base, and returns how many it set.
func setAll(c *engine.Counters, base uint64) int {
	n := 0
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Uint64:
			n++
			v.SetUint(base + uint64(n))
		case reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return n
}

// AddCounters must add every counter, including any the engine adds later.
func TestAddCountersCoversEveryField(t *testing.T) {
	var a, b, want engine.Counters
	setAll(&a, 1000)
	setAll(&b, 0)
	n := 0
	var walk func(w, x, y reflect.Value)
	walk = func(w, x, y reflect.Value) {
		switch w.Kind() {
		case reflect.Uint64:
			n++
			w.SetUint(x.Uint() + y.Uint())
		case reflect.Array:
			for i := range w.Len() {
				walk(w.Index(i), x.Index(i), y.Index(i))
			}
		case reflect.Struct:
			for i := range w.NumField() {
				walk(w.Field(i), x.Field(i), y.Field(i))
			}
		default:
			t.Fatalf("engine.Counters has a %v: AddCounters and this test need updating", w.Type())
		}
	}
	walk(reflect.ValueOf(&want).Elem(), reflect.ValueOf(a), reflect.ValueOf(b))
	AddCounters(&a, &b)
	if a != want {
		t.Errorf("AddCounters missed a field:\n got %+v\nwant %+v", a, want)
	}
	if n < 20 {
		t.Errorf("only %d counters walked", n)
	}
}
