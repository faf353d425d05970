//go:build amd64 && !purego && !nosimd

#include "textflag.h"

// Both loops take 64 bytes per iteration as two 32-byte loads, spread each
// 32-bit word into a 64-bit lane (interleaving with a zero register), and
// add the lanes into four accumulators; the lanes are added together at the
// end. Exact integer sums: no carry is ever lost (see avx2Chunk).

// func sumAVX2(p *byte, n int) uint64
TEXT ·sumAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $6, CX
	VPXOR Y15, Y15, Y15
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

sumloop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPUNPCKLDQ Y15, Y0, Y2
	VPUNPCKHDQ Y15, Y0, Y3
	VPADDQ Y2, Y4, Y4
	VPADDQ Y3, Y5, Y5
	VPUNPCKLDQ Y15, Y1, Y2
	VPUNPCKHDQ Y15, Y1, Y3
	VPADDQ Y2, Y6, Y6
	VPADDQ Y3, Y7, Y7
	ADDQ $64, SI
	DECQ CX
	JNZ sumloop

	VPADDQ Y5, Y4, Y4
	VPADDQ Y7, Y6, Y6
	VPADDQ Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDQ X5, X4, X4
	VPEXTRQ $1, X4, AX
	VMOVQ X4, BX
	ADDQ BX, AX
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET

// func copySumAVX2(dst, src *byte, n int) uint64
TEXT ·copySumAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	VPXOR Y15, Y15, Y15
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

copyloop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	VPUNPCKLDQ Y15, Y0, Y2
	VPUNPCKHDQ Y15, Y0, Y3
	VPADDQ Y2, Y4, Y4
	VPADDQ Y3, Y5, Y5
	VPUNPCKLDQ Y15, Y1, Y2
	VPUNPCKHDQ Y15, Y1, Y3
	VPADDQ Y2, Y6, Y6
	VPADDQ Y3, Y7, Y7
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ copyloop

	VPADDQ Y5, Y4, Y4
	VPADDQ Y7, Y6, Y6
	VPADDQ Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDQ X5, X4, X4
	VPEXTRQ $1, X4, AX
	VMOVQ X4, BX
	ADDQ BX, AX
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
