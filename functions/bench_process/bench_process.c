/* bench_process: a worker of the map-reduce benchmark workflow. For every
 * cast it computes the fibonacci-th Fibonacci number (an iterative loop, so
 * CPU time grows linearly with fibonacci), allocates and touches allocate
 * bytes of memory, frees them, and with forward=true casts the payload
 * unchanged to output "out".
 *
 * init-payload: forward=true|false (default true), fibonacci=N (default 0),
 * allocate=BYTES (default 0, at most 256 MiB). No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

static struct {
	int forward;
	int64_t fibonacci;
	size_t allocate;
	volatile uint64_t sink; /* keeps the loop from being optimised away */
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	const uint8_t *v;
	size_t n;
	g.forward = !(edgeless_init_arg(payload, payload_len, "forward", &v, &n) && n == 5 && memcmp(v, "false", 5) == 0);
	g.fibonacci = edgeless_init_arg_i64(payload, payload_len, "fibonacci", 0);
	int64_t a = edgeless_init_arg_i64(payload, payload_len, "allocate", 0);
	g.allocate = a > 0 && a <= (256 << 20) ? (size_t)a : 0;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	uint64_t a = 0, b = 1;
	for (int64_t i = 0; i < g.fibonacci; i++) {
		uint64_t c = a + b;
		a = b;
		b = c;
	}
	g.sink = a;
	if (g.allocate > 0) {
		uint8_t *mem = malloc(g.allocate);
		if (mem) {
			memset(mem, (int)(a & 0xff), g.allocate);
			g.sink += mem[g.allocate - 1];
			free(mem);
		}
	}
	if (g.forward) {
		edgeless_cast("out", payload, payload_len);
	}
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	(void)reply;
	(void)reply_len;
	return EDGELESS_NO_REPLY;
}

void handle_stop(void) {
}
