/*
 * edgeless_http.h - the JSON messages EDGELESS functions exchange with the
 * http-ingress and http-egress resources (EdgelessHTTPRequest and
 * EdgelessHTTPResponse), for C functions.
 *
 *   request:  {"method":"Get","protocol":"HTTP","host":"h:80","path":"/p?q",
 *              "body":[104,105],"headers":{"content-type":"text/plain"}}
 *   response: {"body":[87,111,114,108,100],"status":200,"headers":{}}
 *
 * body is a JSON array of byte values or null; method is one of Get, Head,
 * Post, Put, Delete, Patch; protocol is Unknown, HTTP or HTTPS.
 *
 * Ownership follows edgeless.h: input buffers are borrowed; every buffer
 * these functions return through an out-parameter is malloc'd and owned by
 * the caller (free it, or return it from handle_call as the reply).
 */
#ifndef EDGELESS_HTTP_H
#define EDGELESS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* edgeless_json_field finds the member key of the top-level JSON object in
 * json and points *value at its raw JSON text (*value_len bytes, INTO json).
 * It returns false when json is not an object or has no such member. */
bool edgeless_json_field(const uint8_t *json, size_t json_len, const char *key, const uint8_t **value,
                         size_t *value_len);

/* edgeless_json_string decodes the JSON string value (as found by
 * edgeless_json_field) into a malloc'd, NUL-terminated buffer *out of
 * *out_len bytes (NUL not counted). It returns false when value is not a
 * string or memory runs out. */
bool edgeless_json_string(const uint8_t *value, size_t value_len, char **out, size_t *out_len);

/* edgeless_json_bytes decodes a body value: an array of byte numbers, a
 * string (its UTF-8 bytes) or null (an empty buffer), into a malloc'd buffer
 * *out of *out_len bytes (*out may be NULL when empty). */
bool edgeless_json_bytes(const uint8_t *value, size_t value_len, uint8_t **out, size_t *out_len);

/* edgeless_json_int decodes a non-negative integer value. */
bool edgeless_json_int(const uint8_t *value, size_t value_len, int64_t *out);

/* edgeless_http_response builds an EdgelessHTTPResponse with status, body
 * and, when content_type is not NULL, a content-type header, into a
 * malloc'd buffer *out of *out_len bytes. */
bool edgeless_http_response(int status, const void *body, size_t body_len, const char *content_type, uint8_t **out,
                            size_t *out_len);

/* edgeless_http_request builds an EdgelessHTTPRequest without headers into
 * a malloc'd buffer *out of *out_len bytes. method is "Get", "Post", …;
 * protocol "HTTP" or "HTTPS"; host is host:port; path starts with '/'. body
 * may be NULL (sent as null). host and path must not contain '"' or '\'. */
bool edgeless_http_request(const char *method, const char *protocol, const char *host, const char *path,
                           const void *body, size_t body_len, uint8_t **out, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* EDGELESS_HTTP_H */
