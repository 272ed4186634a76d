/* moving_avg: keeps the last N numbers cast to it and casts their average,
 * as decimal text with three digits after the point, to output "output"
 * after each one; a payload that is not a number becomes a message on
 * output "error".
 *
 * init-payload: N, the window (as in EDGELESS's tutorial, e.g. "10"; default
 * 10, at most 1000). No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW 1000

static struct {
	double values[MAX_WINDOW];
	int64_t window, count, next;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.window = 10;
	int64_t w;
	if (payload != NULL && edgeless_parse_i64(payload, payload_len, &w) && w > 0 && w <= MAX_WINDOW) {
		g.window = w;
	}
	g.count = 0;
	g.next = 0;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	double v;
	if (!edgeless_parse_f64(payload, payload_len, &v)) {
		static const char prefix[] = "not a number: ";
		char *msg = malloc(sizeof prefix - 1 + payload_len + 1);
		if (msg != NULL) {
			memcpy(msg, prefix, sizeof prefix - 1);
			if (payload_len > 0) {
				memcpy(msg + sizeof prefix - 1, payload, payload_len);
			}
			edgeless_cast("error", msg, sizeof prefix - 1 + payload_len);
			free(msg);
		}
		return;
	}
	g.values[g.next] = v;
	g.next = (g.next + 1) % g.window;
	if (g.count < g.window) {
		g.count++;
	}
	double sum = 0;
	for (int64_t i = 0; i < g.count; i++) {
		sum += g.values[i];
	}
	char buf[EDGELESS_F64_BUF];
	size_t n = edgeless_format_f64(sum / (double)g.count, 3, buf);
	edgeless_cast("output", buf, n);
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
