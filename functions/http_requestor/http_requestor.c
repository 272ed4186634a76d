/* http_requestor: every period milliseconds calls output "http-egress" with
 * an EdgelessHTTPRequest "GET http://<host><path>" and casts the outcome to
 * output "output": "<n> <status> <body>" for a response, "<n> error" when
 * the call fails (n = 1, 2, ...).
 *
 * init-payload: host=HOST:PORT (required), path=PATH (default /),
 * period=MS (default 1000). The timer is a delayed cast of "wakeup" to
 * "self". No state. */
#include "edgeless.h"
#include "edgeless_http.h"

#include <stdlib.h>
#include <string.h>

#define WAKEUP "wakeup"

static struct {
	char host[256];
	char path[256];
	int64_t period;
	int64_t n;
} g;

static void copy_arg(const uint8_t *payload, size_t payload_len, const char *key, char *dst, size_t cap,
                     const char *fallback) {
	const uint8_t *v;
	size_t n;
	if (!edgeless_init_arg(payload, payload_len, key, &v, &n) || n == 0 || n >= cap) {
		v = (const uint8_t *)fallback;
		n = strlen(fallback);
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	copy_arg(payload, payload_len, "host", g.host, sizeof g.host, "127.0.0.1:80");
	copy_arg(payload, payload_len, "path", g.path, sizeof g.path, "/");
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

/* report casts "<n> <text><extra>" to output. */
static void report(const char *text, const uint8_t *extra, size_t extra_len) {
	char num[EDGELESS_I64_BUF];
	size_t nlen = edgeless_format_i64(g.n, num);
	size_t tlen = strlen(text);
	char *msg = malloc(nlen + 1 + tlen + extra_len + 1);
	if (msg == NULL) {
		return;
	}
	memcpy(msg, num, nlen);
	msg[nlen] = ' ';
	memcpy(msg + nlen + 1, text, tlen);
	if (extra_len > 0) {
		memcpy(msg + nlen + 1 + tlen, extra, extra_len);
	}
	edgeless_cast("output", msg, nlen + 1 + tlen + extra_len);
	free(msg);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		return;
	}
	g.n++;
	uint8_t *req;
	size_t req_len;
	if (edgeless_http_request("Get", "HTTP", g.host, g.path, NULL, 0, &req, &req_len)) {
		uint8_t *resp;
		size_t resp_len;
		edgeless_call_ret ret = edgeless_call("http-egress", req, req_len, &resp, &resp_len);
		free(req);
		const uint8_t *v;
		size_t vlen;
		int64_t status;
		uint8_t *body = NULL;
		size_t body_len = 0;
		if (ret == EDGELESS_REPLY && edgeless_json_field(resp, resp_len, "status", &v, &vlen) &&
		    edgeless_json_int(v, vlen, &status) && edgeless_json_field(resp, resp_len, "body", &v, &vlen) &&
		    edgeless_json_bytes(v, vlen, &body, &body_len)) {
			char line[EDGELESS_I64_BUF + 1];
			size_t n = edgeless_format_i64(status, line);
			line[n] = ' ';
			line[n + 1] = '\0';
			report(line, body, body_len);
		} else {
			report("error", NULL, 0);
		}
		free(body);
		free(resp);
	}
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
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
