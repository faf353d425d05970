package engine

import (
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Deep copies of an Engine, for tests only: the stateful fuzzer does the
// handshakes (and their key agreements) once per process and starts every
// input from a copy of the established engines. A copy shares nothing
// mutable with its original, so what one input does cannot leak into the
// next.
//
// cloneEngine walks the engine with reflection, unexported fields included.
// What it copies and what it shares:
//   - structs, arrays, slices, maps and pointers to types of this module or
//     to unnamed types are copied; a pointer or slice met twice is copied
//     once, so cycles (the flow lists, the timer heap) and aliases survive;
//   - pointers to types of other modules and of the standard library
//     (*time.Location, netip's interned zone handles) are shared: their
//     identity matters and the engine never writes through them;
//   - interface values are shared: the engine holds immutable ones only
//     (cipher.AEAD instances, errors), except Config.Rand, which the copy
//     replaces;
//   - funcs are shared, except the method values the engine binds to a flow
//     (the send half's sealer), which are bound again to the copy, and
//     Config.Now, which the copy replaces.
//
// It panics on state it cannot copy faithfully (a resumption cache).
func cloneEngine(e *Engine, now func() time.Time, rnd chachaReader) *Engine {
	if e.cfg.Cache != nil {
		panic("cloneEngine: engines with a resumption cache cannot be copied")
	}
	c := cloner{ptrs: make(map[ptrKey]reflect.Value), slices: make(map[ptrKey]reflect.Value)}
	ne := c.pointer(reflect.ValueOf(e)).Interface().(*Engine)
	ne.cfg.Now = now
	ne.cfg.Rand = rnd
	for _, f := range ne.tab.flows {
		if f.snd.seal != nil {
			f.snd.seal = f.sealFrame
		}
	}
	return ne
}

type ptrKey struct {
	addr uintptr
	t    reflect.Type
}

type cloner struct {
	ptrs   map[ptrKey]reflect.Value // original pointer -> its copy
	slices map[ptrKey]reflect.Value // original backing array -> copy (full capacity)
}

const modulePath = "github.com/tcpcryptd/tcpcrypt"

// open makes an addressable value readable and settable even when it was
// reached through unexported fields.
func open(v reflect.Value) reflect.Value {
	if v.CanAddr() && (!v.CanInterface() || !v.CanSet()) {
		return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	return v
}

// copyInto copies src into the settable dst of the same type.
func (c *cloner) copyInto(dst, src reflect.Value) {
	dst, src = open(dst), open(src)
	switch src.Kind() {
	case reflect.Pointer:
		if !src.IsNil() {
			dst.Set(c.pointer(src))
		}
	case reflect.Struct:
		if !hasPointers(src.Type()) {
			dst.Set(src)
			return
		}
		for i := 0; i < src.NumField(); i++ {
			c.copyInto(dst.Field(i), src.Field(i))
		}
	case reflect.Array:
		if !hasPointers(src.Type()) {
			dst.Set(src)
			return
		}
		for i := 0; i < src.Len(); i++ {
			c.copyInto(dst.Index(i), src.Index(i))
		}
	case reflect.Slice:
		if !src.IsNil() {
			dst.Set(c.slice(src))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		kt, vt := src.Type().Key(), src.Type().Elem()
		it := src.MapRange()
		for it.Next() {
			k, v := reflect.New(kt).Elem(), reflect.New(vt).Elem()
			c.copyInto(k, c.addressable(it.Key()))
			c.copyInto(v, c.addressable(it.Value()))
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Chan:
		if !src.IsNil() {
			panic("cloneEngine: channel in engine state")
		}
	default:
		// Scalars and strings are values; funcs and interfaces are shared
		// (see cloneEngine).
		dst.Set(src)
	}
}

// addressable returns an addressable copy of v (map keys and values are
// not addressable).
func (c *cloner) addressable(v reflect.Value) reflect.Value {
	a := reflect.New(v.Type()).Elem()
	a.Set(v)
	return a
}

func (c *cloner) pointer(src reflect.Value) reflect.Value {
	et := src.Type().Elem()
	if p := et.PkgPath(); p != "" && p != modulePath && !strings.HasPrefix(p, modulePath+"/") {
		return src // shared: see cloneEngine
	}
	k := ptrKey{src.Pointer(), et}
	if p, ok := c.ptrs[k]; ok {
		return p
	}
	p := reflect.New(et)
	c.ptrs[k] = p
	c.copyInto(p.Elem(), src.Elem())
	return p
}

func (c *cloner) slice(src reflect.Value) reflect.Value {
	n, cp := src.Len(), src.Cap()
	if cp == 0 {
		return reflect.MakeSlice(src.Type(), 0, 0)
	}
	full := src.Slice3(0, cp, cp)
	k := ptrKey{src.Pointer(), src.Type()}
	if s, ok := c.slices[k]; ok && s.Cap() == cp {
		return s.Slice3(0, n, cp)
	}
	s := reflect.MakeSlice(src.Type(), cp, cp)
	if hasPointers(src.Type().Elem()) {
		for i := 0; i < cp; i++ {
			c.copyInto(s.Index(i), full.Index(i))
		}
	} else {
		reflect.Copy(s, full)
	}
	c.slices[k] = s
	return s.Slice3(0, n, cp)
}

var (
	pointerFreeMu sync.Mutex
	pointerFree   = map[reflect.Type]bool{}
)

// hasPointers reports whether values of t hold any pointer, slice, map,
// func, interface, channel or string (anything copyInto must look into).
func hasPointers(t reflect.Type) bool {
	pointerFreeMu.Lock()
	defer pointerFreeMu.Unlock()
	return hasPointersLocked(t)
}

func hasPointersLocked(t reflect.Type) bool {
	if v, ok := pointerFree[t]; ok {
		return !v
	}
	var has bool
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField() && !has; i++ {
			has = hasPointersLocked(t.Field(i).Type)
		}
	case reflect.Array:
		has = t.Len() > 0 && hasPointersLocked(t.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		has = false
	default:
		has = true
	}
	pointerFree[t] = !has
	return has
}
