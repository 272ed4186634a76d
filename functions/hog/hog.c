/* hog: exercises the platform's per-instance memory limit. Each cast
 * allocates and touches memory in 1 MiB blocks, as many as the payload says
 * in decimal (empty or invalid: without bound), and executes an unreachable
 * instruction when an allocation fails. A call replies with the number of
 * MiB held so far. The blocks are never freed. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define MIB (1024 * 1024)

static int64_t held;

/* blocks chains every block through its first word. Keeping them reachable
 * from a global stops the compiler from proving the allocations unused and
 * removing them. */
static void *blocks;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	int64_t want;
	if (!edgeless_parse_i64(payload, payload_len, &want) || want < 0) {
		want = INT64_MAX;
	}
	for (int64_t i = 0; i < want; i++) {
		uint8_t *b = malloc(MIB);
		if (b == NULL) {
			__builtin_trap();
		}
		/* Touch every page so the memory is really committed. */
		memset(b, 0xa5, MIB);
		memcpy(b, &blocks, sizeof blocks);
		blocks = b;
		held++;
	}
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	char num[EDGELESS_I64_BUF];
	size_t n = edgeless_format_i64(held, num);
	return edgeless_reply(reply, reply_len, num, n);
}

void handle_stop(void) {
}
