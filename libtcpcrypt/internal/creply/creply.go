//go:build cgo

package creply

/*
#cgo CFLAGS: -std=c99 -Wall -Wextra -I${SRCDIR}/../../src
#include <stdlib.h>
#include "reply.h"
*/
import "C"

import (
	"syscall"
	"unsafe"
)

// Reply is what the C reader extracted from a reply line.
type Reply struct {
	OK        bool
	ID        uint64
	Code      string
	SessionID []byte
	Role      byte
}

// Parse runs tcpcrypt_reply_parse on line for the request id wantID. It
// returns the reply and 0, or the errno the reader returned. The line is
// copied into C memory of exactly its length.
func Parse(line []byte, wantID uint64) (Reply, syscall.Errno) {
	n := len(line)
	buf := C.malloc(C.size_t(max(n, 1)))
	defer C.free(buf)
	if n > 0 {
		copy(unsafe.Slice((*byte)(buf), n), line)
	}
	var r C.struct_tcpcrypt_reply
	e := C.tcpcrypt_reply_parse((*C.char)(buf), C.size_t(n), C.uint64_t(wantID), &r)
	out := Reply{
		OK:   r.ok != 0,
		ID:   uint64(r.id),
		Code: C.GoString(&r.code[0]),
		Role: byte(r.role),
	}
	if r.sid_len > 0 {
		out.SessionID = C.GoBytes(unsafe.Pointer(&r.sid[0]), C.int(r.sid_len))
	}
	return out, syscall.Errno(e)
}

// CodeErrno maps a protocol error code to the errno the library reports.
func CodeErrno(code string) syscall.Errno {
	cs := C.CString(code)
	defer C.free(unsafe.Pointer(cs))
	return syscall.Errno(C.tcpcrypt_code_errno(cs))
}
