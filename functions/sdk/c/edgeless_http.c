/*
 * edgeless_http.c - JSON helpers for the EDGELESS HTTP messages (see
 * edgeless_http.h). A small scanner for the shapes these messages use, not a
 * general JSON library: values it does not need are skipped, not decoded.
 */
#include "edgeless_http.h"
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const uint8_t *b;
	size_t n, i;
} scan;

static void ws(scan *s) {
	while (s->i < s->n && (s->b[s->i] == ' ' || s->b[s->i] == '\t' || s->b[s->i] == '\n' || s->b[s->i] == '\r')) {
		s->i++;
	}
}

static bool eat(scan *s, uint8_t c) {
	ws(s);
	if (s->i < s->n && s->b[s->i] == c) {
		s->i++;
		return true;
	}
	return false;
}

/* skip_string moves past a string whose opening quote is at s->i. */
static bool skip_string(scan *s) {
	if (s->i >= s->n || s->b[s->i] != '"') {
		return false;
	}
	for (s->i++; s->i < s->n; s->i++) {
		if (s->b[s->i] == '\\') {
			s->i++;
		} else if (s->b[s->i] == '"') {
			s->i++;
			return true;
		}
	}
	return false;
}

/* skip_value moves past any value; depth bounds nesting. */
static bool skip_value(scan *s, int depth) {
	ws(s);
	if (s->i >= s->n || depth > 32) {
		return false;
	}
	uint8_t c = s->b[s->i];
	if (c == '"') {
		return skip_string(s);
	}
	if (c == '{' || c == '[') {
		uint8_t close = c == '{' ? '}' : ']';
		s->i++;
		if (eat(s, close)) {
			return true;
		}
		for (;;) {
			if (c == '{') {
				ws(s);
				if (!skip_string(s) || !eat(s, ':')) {
					return false;
				}
			}
			if (!skip_value(s, depth + 1)) {
				return false;
			}
			if (eat(s, ',')) {
				continue;
			}
			return eat(s, close);
		}
	}
	size_t start = s->i;
	while (s->i < s->n && s->b[s->i] != ',' && s->b[s->i] != '}' && s->b[s->i] != ']' && s->b[s->i] != ' ' &&
	       s->b[s->i] != '\n' && s->b[s->i] != '\r' && s->b[s->i] != '\t') {
		s->i++;
	}
	return s->i > start;
}

bool edgeless_json_field(const uint8_t *json, size_t json_len, const char *key, const uint8_t **value,
                         size_t *value_len) {
	if (json == NULL) {
		return false;
	}
	scan s = {json, json_len, 0};
	size_t key_len = strlen(key);
	if (!eat(&s, '{') || eat(&s, '}')) {
		return false;
	}
	for (;;) {
		ws(&s);
		size_t k = s.i;
		if (!skip_string(&s)) {
			return false;
		}
		/* Keys with escapes never match: the keys looked up are plain. */
		bool match = s.i - k - 2 == key_len && memcmp(json + k + 1, key, key_len) == 0;
		if (!eat(&s, ':')) {
			return false;
		}
		ws(&s);
		size_t v = s.i;
		if (!skip_value(&s, 0)) {
			return false;
		}
		if (match) {
			*value = json + v;
			*value_len = s.i - v;
			return true;
		}
		if (!eat(&s, ',')) {
			return false;
		}
	}
}

static int hexval(uint8_t c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* put_utf8 writes code point r as UTF-8 to out and returns the length. */
static size_t put_utf8(uint32_t r, char *out) {
	if (r < 0x80) {
		out[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (char)(0xc0 | r >> 6);
		out[1] = (char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (char)(0xe0 | r >> 12);
		out[1] = (char)(0x80 | (r >> 6 & 0x3f));
		out[2] = (char)(0x80 | (r & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | r >> 18);
	out[1] = (char)(0x80 | (r >> 12 & 0x3f));
	out[2] = (char)(0x80 | (r >> 6 & 0x3f));
	out[3] = (char)(0x80 | (r & 0x3f));
	return 4;
}

bool edgeless_json_string(const uint8_t *value, size_t value_len, char **out, size_t *out_len) {
	if (value_len < 2 || value[0] != '"' || value[value_len - 1] != '"') {
		return false;
	}
	/* Decoding never lengthens a string (\uXXXX is 6 bytes for <= 4). */
	char *buf = malloc(value_len);
	if (buf == NULL) {
		return false;
	}
	size_t n = 0;
	for (size_t i = 1; i + 1 < value_len; i++) {
		uint8_t c = value[i];
		if (c != '\\') {
			buf[n++] = (char)c;
			continue;
		}
		if (++i + 1 >= value_len) {
			break;
		}
		switch (value[i]) {
		case 'n': buf[n++] = '\n'; break;
		case 't': buf[n++] = '\t'; break;
		case 'r': buf[n++] = '\r'; break;
		case 'b': buf[n++] = '\b'; break;
		case 'f': buf[n++] = '\f'; break;
		case 'u': {
			uint32_t r = 0;
			for (int k = 1; k <= 4; k++) {
				int h = i + (size_t)k < value_len ? hexval(value[i + (size_t)k]) : -1;
				if (h < 0) {
					free(buf);
					return false;
				}
				r = r << 4 | (uint32_t)h;
			}
			i += 4;
			n += put_utf8(r, buf + n); /* a lone surrogate is passed through as is */
			break;
		}
		default: buf[n++] = (char)value[i];
		}
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return true;
}

bool edgeless_json_int(const uint8_t *value, size_t value_len, int64_t *out) {
	return edgeless_parse_i64(value, value_len, out) && *out >= 0;
}

bool edgeless_json_bytes(const uint8_t *value, size_t value_len, uint8_t **out, size_t *out_len) {
	*out = NULL;
	*out_len = 0;
	if (value_len == 4 && memcmp(value, "null", 4) == 0) {
		return true;
	}
	if (value_len > 0 && value[0] == '"') {
		char *s;
		size_t n;
		if (!edgeless_json_string(value, value_len, &s, &n)) {
			return false;
		}
		*out = (uint8_t *)s;
		*out_len = n;
		return true;
	}
	scan s = {value, value_len, 0};
	if (!eat(&s, '[')) {
		return false;
	}
	/* Each byte takes at least two characters ("0,"). */
	uint8_t *buf = malloc(value_len / 2 + 1);
	if (buf == NULL) {
		return false;
	}
	size_t n = 0;
	if (!eat(&s, ']')) {
		for (;;) {
			ws(&s);
			unsigned v = 0;
			size_t start = s.i;
			while (s.i < s.n && s.b[s.i] >= '0' && s.b[s.i] <= '9' && v <= 255) {
				v = v * 10 + (unsigned)(s.b[s.i++] - '0');
			}
			if (s.i == start || v > 255) {
				free(buf);
				return false;
			}
			buf[n++] = (uint8_t)v;
			if (eat(&s, ',')) {
				continue;
			}
			if (eat(&s, ']')) {
				break;
			}
			free(buf);
			return false;
		}
	}
	*out = buf;
	*out_len = n;
	return true;
}

/* append_body writes body as a JSON array of byte values, or null. */
static size_t append_body(char *dst, const uint8_t *body, size_t len) {
	if (body == NULL) {
		memcpy(dst, "null", 4);
		return 4;
	}
	size_t n = 0;
	dst[n++] = '[';
	for (size_t i = 0; i < len; i++) {
		if (i > 0) {
			dst[n++] = ',';
		}
		n += edgeless_format_i64(body[i], dst + n);
	}
	dst[n++] = ']';
	return n;
}

static size_t append_str(char *dst, const char *s) {
	size_t n = strlen(s);
	memcpy(dst, s, n);
	return n;
}

bool edgeless_http_response(int status, const void *body, size_t body_len, const char *content_type, uint8_t **out,
                            size_t *out_len) {
	/* 4 bytes per body byte ("255,") plus the fixed parts. */
	size_t cap = 4 * body_len + 64 + (content_type ? strlen(content_type) : 0) + EDGELESS_I64_BUF + 8;
	char *buf = malloc(cap);
	if (buf == NULL) {
		return false;
	}
	size_t n = append_str(buf, "{\"body\":");
	n += append_body(buf + n, body == NULL && body_len == 0 ? (const uint8_t *)"" : body, body_len);
	n += append_str(buf + n, ",\"status\":");
	n += edgeless_format_i64(status, buf + n);
	n += append_str(buf + n, ",\"headers\":{");
	if (content_type != NULL) {
		n += append_str(buf + n, "\"content-type\":\"");
		n += append_str(buf + n, content_type);
		buf[n++] = '"';
	}
	n += append_str(buf + n, "}}");
	*out = (uint8_t *)buf;
	*out_len = n;
	return true;
}

bool edgeless_http_request(const char *method, const char *protocol, const char *host, const char *path,
                           const void *body, size_t body_len, uint8_t **out, size_t *out_len) {
	size_t cap = 4 * body_len + strlen(method) + strlen(protocol) + strlen(host) + strlen(path) + 96;
	char *buf = malloc(cap);
	if (buf == NULL) {
		return false;
	}
	size_t n = append_str(buf, "{\"method\":\"");
	n += append_str(buf + n, method);
	n += append_str(buf + n, "\",\"protocol\":\"");
	n += append_str(buf + n, protocol);
	n += append_str(buf + n, "\",\"host\":\"");
	n += append_str(buf + n, host);
	n += append_str(buf + n, "\",\"path\":\"");
	n += append_str(buf + n, path);
	n += append_str(buf + n, "\",\"body\":");
	n += append_body(buf + n, body, body_len);
	n += append_str(buf + n, ",\"headers\":{}}");
	*out = (uint8_t *)buf;
	*out_len = n;
	return true;
}
