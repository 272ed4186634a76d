/* http_processor: answers calls from an http-ingress resource (JSON mode).
 * The call's payload is an EdgelessHTTPRequest; the reply an
 * EdgelessHTTPResponse:
 *
 *   path /hello (any query)  200 "World"
 *   path /echo  (any query)  200 with the request's body
 *   any other path           404 "Not Found"
 *
 * A payload that is not an EdgelessHTTPRequest fails the call with Err.
 * Casts (from an ingress in async mode) are logged. No init-payload, no
 * state. */
#include "edgeless.h"
#include "edgeless_http.h"

#include <stdlib.h>
#include <string.h>

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "http_processor", payload, payload_len);
}

/* has_path reports whether path is want, alone or followed by a query. */
static bool has_path(const char *path, size_t path_len, const char *want) {
	size_t n = strlen(want);
	return path_len >= n && memcmp(path, want, n) == 0 && (path_len == n || path[n] == '?');
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	const uint8_t *v;
	size_t vlen;
	char *path;
	size_t path_len;
	if (!edgeless_json_field(payload, payload_len, "path", &v, &vlen) ||
	    !edgeless_json_string(v, vlen, &path, &path_len)) {
		return EDGELESS_ERR;
	}
	bool ok;
	if (has_path(path, path_len, "/hello")) {
		ok = edgeless_http_response(200, "World", 5, "text/plain", reply, reply_len);
	} else if (has_path(path, path_len, "/echo")) {
		uint8_t *body = NULL;
		size_t body_len = 0;
		ok = edgeless_json_field(payload, payload_len, "body", &v, &vlen) &&
		     edgeless_json_bytes(v, vlen, &body, &body_len) &&
		     edgeless_http_response(200, body, body_len, "application/octet-stream", reply, reply_len);
		free(body);
	} else {
		ok = edgeless_http_response(404, "Not Found", 9, "text/plain", reply, reply_len);
	}
	free(path);
	return ok ? EDGELESS_REPLY : EDGELESS_ERR;
}

void handle_stop(void) {
}
