/*
 * edgeless.c - target-independent helpers of the C SDK (see edgeless.h).
 * Plain C with no I/O, so it links into any target without pulling in
 * stdio or system interfaces.
 */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

static bool is_space(uint8_t c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* trim narrows [*p, *p+*n) to exclude leading and trailing whitespace. */
static void trim(const uint8_t **p, size_t *n) {
	while (*n > 0 && is_space((*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*p)[*n - 1])) {
		(*n)--;
	}
}

bool edgeless_init_arg(const uint8_t *payload, size_t payload_len, const char *key,
                       const uint8_t **value, size_t *value_len) {
	if (payload == NULL || key == NULL) {
		return false;
	}
	size_t key_len = strlen(key);
	bool found = false;
	size_t start = 0;
	while (start <= payload_len) {
		size_t end = start;
		while (end < payload_len && payload[end] != ',') {
			end++;
		}
		const uint8_t *item = payload + start;
		size_t item_len = end - start;
		const uint8_t *eq = memchr(item, '=', item_len);
		if (eq != NULL) {
			const uint8_t *k = item;
			size_t k_len = (size_t)(eq - item);
			const uint8_t *v = eq + 1;
			size_t v_len = item_len - k_len - 1;
			trim(&k, &k_len);
			trim(&v, &v_len);
			if (k_len == key_len && memcmp(k, key, key_len) == 0) {
				/* Keep scanning: the last occurrence wins, as in the
				 * reference SDK's map-based parser. */
				*value = v;
				*value_len = v_len;
				found = true;
			}
		}
		start = end + 1;
	}
	return found;
}

int64_t edgeless_init_arg_i64(const uint8_t *payload, size_t payload_len, const char *key, int64_t fallback) {
	const uint8_t *v;
	size_t n;
	int64_t out;
	if (!edgeless_init_arg(payload, payload_len, key, &v, &n) || !edgeless_parse_i64(v, n, &out)) {
		return fallback;
	}
	return out;
}

bool edgeless_parse_i64(const uint8_t *text, size_t text_len, int64_t *out) {
	if (text == NULL) {
		return false;
	}
	trim(&text, &text_len);
	bool neg = false;
	if (text_len > 0 && (text[0] == '-' || text[0] == '+')) {
		neg = text[0] == '-';
		text++;
		text_len--;
	}
	if (text_len == 0) {
		return false;
	}
	/* Accumulate the magnitude as unsigned so INT64_MIN, whose magnitude is
	 * one more than INT64_MAX, parses without overflow. */
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t mag = 0;
	for (size_t i = 0; i < text_len; i++) {
		uint8_t c = text[i];
		if (c < '0' || c > '9') {
			return false;
		}
		uint64_t d = (uint64_t)(c - '0');
		if (mag > (limit - d) / 10) {
			return false;
		}
		mag = mag * 10 + d;
	}
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return true;
}

size_t edgeless_format_i64(int64_t v, char *buf) {
	char tmp[EDGELESS_I64_BUF];
	size_t n = 0;
	/* Work on the unsigned magnitude so INT64_MIN does not overflow. */
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	size_t len = 0;
	if (v < 0) {
		buf[len++] = '-';
	}
	while (n > 0) {
		buf[len++] = tmp[--n];
	}
	buf[len] = '\0';
	return len;
}

bool edgeless_parse_f64(const uint8_t *text, size_t text_len, double *out) {
	if (text == NULL) {
		return false;
	}
	trim(&text, &text_len);
	size_t i = 0;
	bool neg = false;
	if (i < text_len && (text[i] == '-' || text[i] == '+')) {
		neg = text[i] == '-';
		i++;
	}
	double v = 0;
	size_t digits = 0;
	for (; i < text_len && text[i] >= '0' && text[i] <= '9'; i++, digits++) {
		v = v * 10 + (text[i] - '0');
	}
	if (i < text_len && text[i] == '.') {
		double scale = 0.1;
		for (i++; i < text_len && text[i] >= '0' && text[i] <= '9'; i++, digits++) {
			v += (text[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (digits == 0) {
		return false;
	}
	if (i < text_len && (text[i] == 'e' || text[i] == 'E')) {
		int64_t e;
		if (!edgeless_parse_i64(text + i + 1, text_len - i - 1, &e) || e > 308 || e < -308) {
			return false;
		}
		for (; e > 0; e--) {
			v *= 10;
		}
		for (; e < 0; e++) {
			v /= 10;
		}
		i = text_len;
	}
	if (i != text_len) {
		return false;
	}
	*out = neg ? -v : v;
	return true;
}

size_t edgeless_format_f64(double v, int decimals, char *buf) {
	if (decimals < 0) {
		decimals = 0;
	}
	if (decimals > 9) {
		decimals = 9;
	}
	if (!(v > -9.2e18 && v < 9.2e18)) {
		memcpy(buf, "nan", 4);
		return 3;
	}
	uint64_t scale = 1;
	for (int k = 0; k < decimals; k++) {
		scale *= 10;
	}
	bool neg = v < 0;
	double mag = neg ? -v : v;
	/* Round half away from zero to the last digit shown. */
	uint64_t whole = (uint64_t)mag;
	uint64_t frac = (uint64_t)((mag - (double)whole) * (double)scale + 0.5);
	if (frac >= scale) {
		whole++;
		frac -= scale;
	}
	size_t n = 0;
	if (neg && (whole != 0 || frac != 0)) {
		buf[n++] = '-';
	}
	n += edgeless_format_i64((int64_t)whole, buf + n);
	if (decimals > 0) {
		buf[n++] = '.';
		for (int k = decimals - 1; k >= 0; k--) {
			buf[n + (size_t)k] = (char)('0' + frac % 10);
			frac /= 10;
		}
		n += (size_t)decimals;
	}
	buf[n] = '\0';
	return n;
}

edgeless_call_ret edgeless_reply(uint8_t **reply, size_t *reply_len, const void *data, size_t len) {
	uint8_t *buf = malloc(len > 0 ? len : 1);
	if (buf == NULL) {
		return EDGELESS_ERR;
	}
	if (len > 0) {
		memcpy(buf, data, len);
	}
	*reply = buf;
	*reply_len = len;
	return EDGELESS_REPLY;
}
