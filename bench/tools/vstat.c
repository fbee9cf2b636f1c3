/* vstat: loads a BPF object as the agent would (no pinning: a running agent's pinned maps are never
 * shared) with each program's verifier log at level 4 and prints, per program, the kernel's
 * "processed N insns", total and peak states and "verification time", then the loading thread's
 * CPU for the whole object (bench/results/2026-12-08-verifier-split.md).
 *
 *   gcc -O2 -o /tmp/vstat bench/tools/vstat.c -lbpf
 *   /tmp/vstat build/bpf/sys_http.bpf.o sk_inject_pending=1      # .rodata values by name (integers)
 *
 * VSTAT_DUMP=PROG writes PROG's whole log to stderr, at VSTAT_LEVEL (e.g. 6: every state, what
 * bench/tools/verifier-hist.py reads) into a buffer of VSTAT_LOGSZ bytes (a 400k-instruction
 * program needs ~400 MB); VSTAT_DEBUG=1 prints libbpf's own messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>

static size_t LOGSZ = 1 << 20;
static int loud(enum libbpf_print_level l, const char *f, va_list a) { (void)l; return vfprintf(stderr, f, a); }
static int silent(enum libbpf_print_level l, const char *f, va_list a) { (void)l; (void)f; (void)a; return 0; }
static double cpu_ms(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static double wall_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

static int set_rodata(struct bpf_object *obj, const char *name, unsigned long long v)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, ".rodata");
	if (!m) return -1;
	size_t sz; void *img = (void *)bpf_map__initial_value(m, &sz);
	const struct btf *btf = bpf_object__btf(obj);
	int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id <= 0 || !img) return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name)) continue;
		memcpy((char *)img + vs->offset, &v, vs->size); /* little-endian */
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: vstat OBJ [var=value ...]\n"); return 2; }
	libbpf_set_print(getenv("VSTAT_DEBUG") ? loud : silent);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) { perror("open"); return 1; }
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) continue;
		*eq = 0;
		if (set_rodata(obj, argv[i], strtoull(eq + 1, NULL, 0))) { fprintf(stderr, "no rodata %s\n", argv[i]); return 1; }
	}
	struct bpf_map *m;
	bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, NULL); /* never share a running agent's pinned maps */
	struct bpf_program *p;
	int n = 0;
	bpf_object__for_each_program(p, obj) n++;
	char **bufs = calloc(n, sizeof(char *));
	int i = 0;
	const char *only = getenv("VSTAT_LEVEL");
	if (getenv("VSTAT_LOGSZ")) LOGSZ = strtoull(getenv("VSTAT_LOGSZ"), NULL, 0);
	bpf_object__for_each_program(p, obj) {
		const char *d = getenv("VSTAT_DUMP");
		int big = d && !strcmp(d, bpf_program__name(p));
		size_t sz = big ? LOGSZ : (1 << 20);
		bufs[i] = calloc(1, sz);
		bpf_program__set_log_buf(p, bufs[i], sz);
		bpf_program__set_log_level(p, big && only ? atoi(only) : 4);
		i++;
	}
	double c0 = cpu_ms(), w0 = wall_ms();
	int err = bpf_object__load(obj);
	double c1 = cpu_ms(), w1 = wall_ms();
	i = 0;
	bpf_object__for_each_program(p, obj) {
		char *log = bufs[i++];
		if (!bpf_program__autoload(p)) continue;
		long insns = -1, total = -1, peak = -1, us = -1, mx = -1;
		char *s = strstr(log, "processed ");
		if (s) sscanf(s, "processed %ld insns", &insns);
		if ((s = strstr(log, "max_states_per_insn "))) sscanf(s, "max_states_per_insn %ld total_states %ld peak_states %ld", &mx, &total, &peak);
		if ((s = strstr(log, "verification time "))) sscanf(s, "verification time %ld usec", &us);
		printf("%-32s insns %8ld  states %6ld peak %6ld  max/insn %3ld  verify %8.1f ms\n", bpf_program__name(p), insns, total, peak, mx, us / 1000.0);
		if (getenv("VSTAT_DUMP") && !strcmp(getenv("VSTAT_DUMP"), bpf_program__name(p))) fputs(log, stderr);
	}
	printf("load: %s  thread CPU %.1f ms  wall %.1f ms\n", err ? "FAILED" : "ok", c1 - c0, w1 - w0);
	if (err && getenv("VSTAT_FAILLOG")) { i = 0; bpf_object__for_each_program(p, obj) { char *l = bufs[i++]; size_t L = strlen(l); if (L) fputs(L > 20000 ? l + L - 20000 : l, stderr); } }
	bpf_object__close(obj);
	return err ? 1 : 0;
}
