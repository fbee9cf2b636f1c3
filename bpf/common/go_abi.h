/* Go's internal register ABI on x86-64 (Go >= 1.17): integer arguments and results in
 * RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; the current goroutine (g) is always in R14. */
#ifndef SPANBRIDGE_GO_ABI_H
#define SPANBRIDGE_GO_ABI_H

#define GO_ARG1(ctx) ((void *)(ctx)->ax)
#define GO_ARG2(ctx) ((void *)(ctx)->bx)
#define GO_ARG3(ctx) ((void *)(ctx)->cx)
#define GO_ARG4(ctx) ((void *)(ctx)->di)
#define GO_ARG5(ctx) ((void *)(ctx)->si)
#define GO_ARG6(ctx) ((void *)(ctx)->r8)
#define GO_RET1(ctx) GO_ARG1(ctx)
#define GO_RET2(ctx) GO_ARG2(ctx)
#define GO_RET3(ctx) GO_ARG3(ctx)
#define GO_G(ctx) ((void *)(ctx)->r14)

/* A Go string header: pointer + length. */
struct go_string {
	__u64 ptr;
	__s64 len;
};

/* A Go slice header: pointer + length + capacity. */
struct go_slice {
	__u64 ptr;
	__s64 len;
	__s64 cap;
};

#endif
