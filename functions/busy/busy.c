/* busy: a function that takes a fixed time per call, for load tests. The
 * call's JSON object may hold "work", in units of a million loop iterations
 * (CPU-bound, default 1), and "sleep_ms", milliseconds spent waiting as a
 * function waiting on I/O would (default 0). It replies "done". */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* param returns the non-negative integer after "key": in the JSON text, or
 * def when absent. */
static long param(const uint8_t *p, size_t n, const char *key, long def) {
	size_t k = strlen(key);
	for (size_t i = 0; i + k + 2 < n; i++) {
		if (p[i] == '"' && memcmp(p + i + 1, key, k) == 0 && p[i + 1 + k] == '"') {
			size_t j = i + k + 2;
			while (j < n && (p[j] == ':' || p[j] == ' ' || p[j] == '"')) {
				j++;
			}
			long v = 0;
			while (j < n && p[j] >= '0' && p[j] <= '9') {
				v = v * 10 + (p[j++] - '0');
			}
			return v;
		}
	}
	return def;
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	long work = param(payload, payload_len, "work", 1);
	long sleep_ms = param(payload, payload_len, "sleep_ms", 0);
	if (sleep_ms > 0) {
		struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	/* volatile keeps the compiler from removing the loop. */
	volatile long x = 0;
	for (long k = 0; k < work * 1000000; k++) {
		x += k;
	}
	(void)x;
	static const char done[] = "done";
	*reply = malloc(sizeof done - 1);
	if (*reply == NULL) {
		return EDGELESS_ERR;
	}
	memcpy(*reply, done, sizeof done - 1);
	*reply_len = sizeof done - 1;
	return EDGELESS_REPLY;
}

void handle_stop(void) {
}
