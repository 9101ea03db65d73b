/* json: a small strict JSON parser (RFC 8259) into a tree, and two writer helpers.
 * Used for the safetensors header and the class list in its metadata; the writers
 * are for reports. Strict: no comments, no trailing commas, no NaN/Infinity, no
 * leading zeros, strings must be valid UTF-8 without raw control characters, and
 * an object may not repeat a key. \uXXXX escapes (with surrogate pairs) become
 * UTF-8; "\u0000" is refused so that every string is a plain C string.
 * Limits: nesting depth JSON_MAX_DEPTH, at most JSON_MAX_NODES values in a document.
 * Numbers are parsed with strtod in the "C" locale (gad never calls setlocale).
 * Not for: streaming, pretty-printing, editing trees, a writer for whole documents. */
#ifndef GAD_IO_JSON_H
#define GAD_IO_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_NODES (1 << 21)

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct Json Json;
struct Json {
    JsonType type;
    int boolean;         /* BOOL: 0 or 1 */
    int is_int;          /* NUMBER: written without fraction/exponent and fits int64 */
    int n;               /* ARRAY, OBJECT: number of children */
    double num;          /* NUMBER: value (nearest double) */
    int64_t ival;        /* NUMBER: exact value when is_int */
    size_t pos;          /* byte offset of the value in the parsed text (for messages) */
    char *str;           /* STRING: UTF-8, NUL-terminated (owned) */
    Json *kid;           /* ARRAY, OBJECT: [n] children in document order (owned) */
    char **key;          /* OBJECT: [n] keys, kid[i] is the value of key[i] (owned) */
};

/* Parse text[0..len) (no NUL needed) as one JSON value with optional surrounding
 * whitespace. Returns 0 with *root filled (free with json_free), or -1 with err_get()
 * = "invalid JSON at byte N: reason" (the caller prefixes the file name) and *root
 * left empty (safe to json_free). */
int json_parse(const char *text, size_t len, Json *root);
/* Free everything root owns (not root itself), leaving it a JSON_NULL. */
void json_free(Json *root);
/* Value of `key` in an object; NULL when absent or when obj is not an object. */
const Json *json_get(const Json *obj, const char *key);
/* "null", "boolean", "number", "string", "array", "object" (for messages). */
const char *json_type_name(JsonType t);

/* Write s as a quoted JSON string: '"' and '\' escaped, control characters as \n, \t,
 * ... or \u00XX; other bytes (UTF-8) as they are. */
void json_write_string(FILE *f, const char *s);
/* The same into a new NUL-terminated buffer the caller frees. */
char *json_quote(const char *s);
/* Write a number so that it reads back as the same double ("%.17g"); NaN and
 * infinities, which JSON cannot hold, are written as null. */
void json_write_number(FILE *f, double x);

#endif
