/* sum: the standalone-function example. A call's payload is a JSON object
 * of parameters, as `edgeless function invoke -f sum -p a:2 -p b:3` sends
 * it ({"a":"2","b":"3"}); the reply is a + b in decimal ("5"). Values may be
 * JSON numbers or strings holding numbers. A missing or non-numeric a or b
 * fails the call with Err. Casts are ignored; no state. */
#include "edgeless.h"

#include <stdio.h>
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
	(void)payload;
	(void)payload_len;
}

/* param finds "key": in the JSON object and parses the number after it,
 * quoted or not. The parameters are a flat object, so a textual search for
 * the quoted key is enough. */
static bool param(const uint8_t *json, size_t len, const char *key, double *out) {
	char pattern[64];
	int n = snprintf(pattern, sizeof pattern, "\"%s\"", key);
	if (n <= 0 || (size_t)n >= sizeof pattern || len == 0) {
		return false;
	}
	char *text = malloc(len + 1);
	if (text == NULL) {
		return false;
	}
	memcpy(text, json, len);
	text[len] = 0;
	bool ok = false;
	char *p = strstr(text, pattern);
	if (p != NULL) {
		p += n;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			p++;
		}
		if (*p == ':') {
			p++;
			while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
				p++;
			}
			bool quoted = *p == '"';
			if (quoted) {
				p++;
			}
			char *end;
			*out = strtod(p, &end);
			ok = end != p && (!quoted || *end == '"');
		}
	}
	free(text);
	return ok;
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	double a, b;
	if (!param(payload, payload_len, "a", &a) || !param(payload, payload_len, "b", &b)) {
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "sum", "want numeric parameters a and b");
		return EDGELESS_ERR;
	}
	char buf[64];
	int n = snprintf(buf, sizeof buf, "%.15g", a + b);
	*reply = malloc((size_t)n);
	if (*reply == NULL) {
		return EDGELESS_ERR;
	}
	memcpy(*reply, buf, (size_t)n);
	*reply_len = (size_t)n;
	return EDGELESS_REPLY;
}

void handle_stop(void) {
}
