package engine

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Deep copies of an Engine, for tests only: the stateful fuzzer does the
// handshakes (and their key agreements) once per process and starts every
// input from a copy of the established engines. A copy shares nothing
// mutable with its original, so what one input does cannot leak into the
// next.
//
// cloneEngine walks the engine's memory by type (reflection for the
// layout, unsafe for the reads and writes, unexported fields included), so
// fields added to the engine later are copied without changes here. What
// it copies and what it shares:
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
// It panics on state it cannot copy faithfully (a resumption cache, a
// channel).
func cloneEngine(e *Engine, now func() time.Time, rnd chachaReader) *Engine {
	if e.cfg.Cache != nil {
		panic("cloneEngine: engines with a resumption cache cannot be copied")
	}
	c := cloner{ptrs: make(map[ptrKey]unsafe.Pointer, 16), slices: make(map[ptrKey]sliceHeader, 16)}
	ne := (*Engine)(c.pointer(unsafe.Pointer(e), planOf(reflect.TypeFor[Engine]())))
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
	addr unsafe.Pointer
	t    reflect.Type
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

type cloner struct {
	ptrs   map[ptrKey]unsafe.Pointer // original pointer -> its copy
	slices map[ptrKey]sliceHeader    // original backing array -> its copy
}

const modulePath = "github.com/tcpcryptd/tcpcrypt"

// copy kinds of a type plan.
const (
	cpBytes   = iota // no pointers: copy the bytes
	cpValue          // copy the value as is (strings, funcs, interfaces, shared types)
	cpStruct         // field by field
	cpArray          // element by element
	cpPointer        // deep
	cpShared         // pointer to a foreign type: share
	cpSlice
	cpMap
	cpChan
)

type plan struct {
	t      reflect.Type
	kind   int
	size   uintptr
	fields []fieldPlan                   // structs: runs of fields
	assign func(dst, src unsafe.Pointer) // cpValue: a typed copy
	elem   reflect.Type                  // pointer, slice and array elements
	ep     atomic.Pointer[plan]
}

// fieldPlan is one field of a struct, or (p nil) a run of n bytes of
// adjacent pointer-free fields.
type fieldPlan struct {
	off, n uintptr
	p      *plan
}

// elemPlan is the plan of p's element type (resolved on first use, as the
// type may refer to itself).
func (p *plan) elemPlan() *plan {
	if ep := p.ep.Load(); ep != nil {
		return ep
	}
	ep := planOf(p.elem)
	p.ep.Store(ep)
	return ep
}

var plans sync.Map // reflect.Type -> *plan

// shallow are foreign struct types whose pointers are shared, copied as
// values (typed assignments, with the write barriers the GC needs).
var shallow = map[reflect.Type]func(dst, src unsafe.Pointer){
	reflect.TypeFor[time.Time]():      func(d, s unsafe.Pointer) { *(*time.Time)(d) = *(*time.Time)(s) },
	reflect.TypeFor[netip.Addr]():     func(d, s unsafe.Pointer) { *(*netip.Addr)(d) = *(*netip.Addr)(s) },
	reflect.TypeFor[netip.AddrPort](): func(d, s unsafe.Pointer) { *(*netip.AddrPort)(d) = *(*netip.AddrPort)(s) },
	reflect.TypeFor[netip.Prefix]():   func(d, s unsafe.Pointer) { *(*netip.Prefix)(d) = *(*netip.Prefix)(s) },
}

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := &plan{t: t, size: t.Size()}
	switch {
	case !hasPointers(t):
		p.kind = cpBytes
	case shallow[t] != nil:
		p.kind, p.assign = cpValue, shallow[t]
	default:
		switch t.Kind() {
		case reflect.Struct:
			p.kind = cpStruct
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				fp := planOf(f.Type)
				if fp.kind != cpBytes {
					p.fields = append(p.fields, fieldPlan{off: f.Offset, p: fp})
					continue
				}
				if k := len(p.fields) - 1; k >= 0 && p.fields[k].p == nil {
					// Extend the run over padding and this field.
					p.fields[k].n = f.Offset + f.Type.Size() - p.fields[k].off
					continue
				}
				p.fields = append(p.fields, fieldPlan{off: f.Offset, n: f.Type.Size()})
			}
		case reflect.Array:
			p.kind, p.elem = cpArray, t.Elem()
		case reflect.Pointer:
			p.kind, p.elem = cpPointer, t.Elem()
			if pk := t.Elem().PkgPath(); pk != "" && pk != modulePath && !strings.HasPrefix(pk, modulePath+"/") {
				p.kind = cpShared
			}
		case reflect.Slice:
			p.kind, p.elem = cpSlice, t.Elem()
		case reflect.Map:
			p.kind = cpMap
		case reflect.Chan:
			p.kind = cpChan
		case reflect.String:
			p.kind, p.assign = cpValue, func(d, s unsafe.Pointer) { *(*string)(d) = *(*string)(s) }
		case reflect.Func, reflect.UnsafePointer:
			p.kind, p.assign = cpValue, func(d, s unsafe.Pointer) { *(*unsafe.Pointer)(d) = *(*unsafe.Pointer)(s) }
		case reflect.Interface:
			// Both interface layouts are two words: a type or itab
			// pointer and a data pointer.
			p.kind, p.assign = cpValue, func(d, s unsafe.Pointer) { *(*[2]unsafe.Pointer)(d) = *(*[2]unsafe.Pointer)(s) }
		default:
			panic("cloneEngine: cannot copy " + t.String())
		}
	}
	plans.Store(t, p)
	return p
}

// copyAt copies the value of p's type at src to the zeroed memory at dst.
func (c *cloner) copyAt(dst, src unsafe.Pointer, p *plan) {
	t := p.t
	switch p.kind {
	case cpBytes:
		if p.size > 0 {
			copy(unsafe.Slice((*byte)(dst), p.size), unsafe.Slice((*byte)(src), p.size))
		}
	case cpValue:
		p.assign(dst, src)
	case cpStruct:
		for _, f := range p.fields {
			if f.p == nil {
				copy(unsafe.Slice((*byte)(unsafe.Add(dst, f.off)), f.n), unsafe.Slice((*byte)(unsafe.Add(src, f.off)), f.n))
				continue
			}
			c.copyAt(unsafe.Add(dst, f.off), unsafe.Add(src, f.off), f.p)
		}
	case cpArray:
		ep := p.elemPlan()
		for i := 0; i < t.Len(); i++ {
			c.copyAt(unsafe.Add(dst, uintptr(i)*ep.size), unsafe.Add(src, uintptr(i)*ep.size), ep)
		}
	case cpShared:
		*(*unsafe.Pointer)(dst) = *(*unsafe.Pointer)(src)
	case cpPointer:
		if sp := *(*unsafe.Pointer)(src); sp != nil {
			*(*unsafe.Pointer)(dst) = c.pointer(sp, p.elemPlan())
		}
	case cpSlice:
		sh := (*sliceHeader)(src)
		if sh.data == nil {
			return
		}
		*(*sliceHeader)(dst) = c.slice(sh, t, p.elemPlan())
	case cpMap:
		sm := reflect.NewAt(t, src).Elem()
		if sm.IsNil() {
			return
		}
		kt, vt := t.Key(), t.Elem()
		kp, vp := planOf(kt), planOf(vt)
		m := reflect.MakeMapWithSize(t, sm.Len())
		k0, v0 := reflect.New(kt).Elem(), reflect.New(vt).Elem()
		for it := sm.MapRange(); it.Next(); {
			k0.Set(it.Key())
			v0.Set(it.Value())
			k, v := reflect.New(kt), reflect.New(vt)
			c.copyAt(k.UnsafePointer(), k0.Addr().UnsafePointer(), kp)
			c.copyAt(v.UnsafePointer(), v0.Addr().UnsafePointer(), vp)
			m.SetMapIndex(k.Elem(), v.Elem())
		}
		reflect.NewAt(t, dst).Elem().Set(m)
	case cpChan:
		if *(*unsafe.Pointer)(src) != nil {
			panic("cloneEngine: channel in engine state")
		}
	}
}

func (c *cloner) pointer(sp unsafe.Pointer, ep *plan) unsafe.Pointer {
	k := ptrKey{sp, ep.t}
	if np, ok := c.ptrs[k]; ok {
		return np
	}
	np := reflect.New(ep.t).UnsafePointer()
	c.ptrs[k] = np
	c.copyAt(np, sp, ep)
	return np
}

func (c *cloner) slice(sh *sliceHeader, t reflect.Type, ep *plan) sliceHeader {
	k := ptrKey{sh.data, t}
	if ns, ok := c.slices[k]; ok && ns.cap == sh.cap {
		ns.len = sh.len
		return ns
	}
	if sh.cap == 0 {
		return sliceHeader{data: reflect.MakeSlice(t, 0, 0).UnsafePointer()}
	}
	ns := sliceHeader{data: reflect.MakeSlice(t, sh.cap, sh.cap).UnsafePointer(), len: sh.len, cap: sh.cap}
	es := ep.size
	if ep.kind == cpBytes {
		n := uintptr(sh.cap) * es
		copy(unsafe.Slice((*byte)(ns.data), n), unsafe.Slice((*byte)(sh.data), n))
	} else {
		for i := 0; i < sh.cap; i++ {
			c.copyAt(unsafe.Add(ns.data, uintptr(i)*es), unsafe.Add(sh.data, uintptr(i)*es), ep)
		}
	}
	c.slices[k] = ns
	return ns
}

var pointerFree sync.Map // reflect.Type -> bool

// hasPointers reports whether values of t hold any pointer, slice, map,
// func, interface, channel or string (anything copyAt must look into).
func hasPointers(t reflect.Type) bool {
	if v, ok := pointerFree.Load(t); ok {
		return !v.(bool)
	}
	var has bool
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField() && !has; i++ {
			has = hasPointers(t.Field(i).Type)
		}
	case reflect.Array:
		has = t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		has = false
	default:
		has = true
	}
	pointerFree.Store(t, !has)
	return has
}
