/* json: strict recursive-descent JSON parser and writer helpers (see io/json.h).
 * The parser reads from a byte range (no NUL needed), tracks the byte offset of
 * every value for messages, and leaves a partly built tree freeable on any error.
 * Not for: lenient input (comments, NaN, trailing commas are errors on purpose). */
#include "io/json.h"
#include "core/err.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;   /* [len] the text */
    size_t len, i;   /* i: read position */
    size_t nodes;    /* values made so far (JSON_MAX_NODES) */
} Parser;

/* "invalid JSON at byte N: ..." */
static int fail(const Parser *p, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(const Parser *p, size_t at, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    (void)p;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("invalid JSON at byte %zu: %s", at, msg);
}

/* The byte at i for a message: "'x'" when printable ASCII, else "byte 0xNN". */
static const char *show_char(const Parser *p, size_t i, char *buf, size_t cap) {
    if (i >= p->len) { snprintf(buf, cap, "end of input"); return buf; }
    unsigned char c = (unsigned char)p->s[i];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, cap, "'%c'", c);
    else snprintf(buf, cap, "byte 0x%02X", c);
    return buf;
}

/* A key for a message: at most 60 bytes, non-printable bytes shown as '?'. */
static const char *show_key(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    for (; *s && o + 4 < cap && o < 60; s++) buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s) { buf[o++] = '.'; buf[o++] = '.'; buf[o++] = '.'; }
    buf[o] = 0;
    return buf;
}

static void skip_ws(Parser *p) {
    while (p->i < p->len) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int parse_value(Parser *p, Json *out, int depth);

static int hex4(const Parser *p, size_t at, unsigned *v) {
    unsigned x = 0;
    for (size_t k = 0; k < 4; k++) {
        if (at + k >= p->len) return fail(p, at + k, "truncated \\u escape");
        char c = p->s[at + k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail(p, at + k, "bad hex digit in \\u escape");
        x = x * 16 + (unsigned)d;
    }
    *v = x;
    return 0;
}

/* Length of the valid UTF-8 sequence starting at s[0] (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;         /* range of the second byte */
    if (c < 0x80) return 1;
    else if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) { need = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < need; k++) if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return need;
}

static size_t utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63));
        o[2] = (char)(0x80 | (cp & 63)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* At a '"': decode the string into a new buffer. The decoded text is never longer
 * than the quoted source, so one allocation of the source span suffices. */
static int parse_string(Parser *p, char **out) {
    size_t start = p->i + 1, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, p->i, "unterminated string");
    char *buf = xmalloc(end - start + 1);
    size_t o = 0, i = start;
    while (i < end) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\\') {
            char e = p->s[i + 1];
            const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
            const char *m = NULL;
            for (const char *q = map; *q; q += 2) if (*q == e) { m = q; break; }
            if (m) { buf[o++] = m[1]; i += 2; continue; }
            if (e != 'u') { free(buf); return fail(p, i, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?'); }
            unsigned cp = 0, lo = 0;
            if (hex4(p, i + 2, &cp)) { free(buf); return -1; }
            size_t at = i;
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return fail(p, at, "unpaired low surrogate \\u%04X", cp); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 1 >= end || p->s[i] != '\\' || p->s[i + 1] != 'u' || hex4(p, i + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    free(buf);
                    return fail(p, at, "unpaired high surrogate \\u%04X", cp);
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (cp == 0) { free(buf); return fail(p, at, "\\u0000 is not supported"); }
            o += utf8_put(buf + o, cp);
        } else if (c < 0x20) {
            free(buf);
            return fail(p, i, "control character 0x%02X in string (must be escaped)", c);
        } else {
            size_t k = utf8_len((const unsigned char *)p->s + i, end - i);
            if (!k) { free(buf); return fail(p, i, "invalid UTF-8 in string"); }
            memcpy(buf + o, p->s + i, k);
            o += k;
            i += k;
        }
    }
    buf[o] = 0;
    p->i = end + 1;
    *out = buf;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(Parser *p, Json *out) {
    size_t start = p->i, i = p->i;
    int neg = 0, integral = 1;
    if (i < p->len && p->s[i] == '-') { neg = 1; i++; }
    if (i >= p->len || !is_digit(p->s[i])) return fail(p, i, "expected a digit");
    if (p->s[i] == '0' && i + 1 < p->len && is_digit(p->s[i + 1]))
        return fail(p, i, "leading zero in number");
    while (i < p->len && is_digit(p->s[i])) i++;
    size_t int_end = i;
    if (i < p->len && p->s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(p->s[i])) return fail(p, i, "expected a digit after '.'");
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) return fail(p, i, "expected a digit in exponent");
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    /* exact integer value when it fits int64 */
    if (integral) {
        uint64_t mag = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        int fits = 1;
        for (size_t k = start + (size_t)neg; k < int_end && fits; k++) {
            unsigned d = (unsigned)(p->s[k] - '0');
            if (mag > (lim - d) / 10) fits = 0;
            else mag = mag * 10 + d;
        }
        if (fits) {
            out->is_int = 1;
            out->ival = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        }
    }
    size_t n = i - start;
    char small[64], *tmp = n < sizeof small ? small : xmalloc(n + 1);
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    out->num = strtod(tmp, NULL);
    if (tmp != small) free(tmp);
    if (isinf(out->num)) return fail(p, start, "number out of range");
    out->type = JSON_NUMBER;
    p->i = i;
    return 0;
}

/* Refuse repeated keys: sort pointers to the key slots, compare neighbours
 * (n log n, so a huge header cannot make this quadratic). */
static int cmp_key(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}
static int check_dup_keys(Parser *p, Json *obj) {
    if (obj->n < 2) return 0;
    char ***slot = xmalloc(sizeof(char **) * (size_t)obj->n);
    for (int k = 0; k < obj->n; k++) slot[k] = &obj->key[k];
    qsort(slot, (size_t)obj->n, sizeof *slot, cmp_key);
    for (int k = 1; k < obj->n; k++) {
        if (strcmp(*slot[k - 1], *slot[k]) == 0) {
            long a = (long)(slot[k - 1] - obj->key), b = (long)(slot[k] - obj->key);
            int later = (int)(a > b ? a : b);
            char kb[80];
            free(slot);
            return fail(p, obj->kid[later].pos, "duplicate key \"%s\"", show_key(obj->key[later], kb, sizeof kb));
        }
    }
    free(slot);
    return 0;
}

/* Append a zeroed child (and a NULL key slot for objects); returns it. */
static Json *add_kid(Json *out, int *cap) {
    if (out->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        out->kid = xrealloc(out->kid, sizeof(Json) * (size_t)*cap);
        if (out->type == JSON_OBJECT) out->key = xrealloc(out->key, sizeof(char *) * (size_t)*cap);
    }
    Json *k = &out->kid[out->n];
    memset(k, 0, sizeof *k);
    if (out->type == JSON_OBJECT) out->key[out->n] = NULL;
    out->n++;
    return k;
}

static int parse_container(Parser *p, Json *out, int depth, int is_obj) {
    char cb[32];
    char close = is_obj ? '}' : ']';
    int cap = 0;
    out->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    if (depth >= JSON_MAX_DEPTH) return fail(p, p->i, "nesting deeper than %d", JSON_MAX_DEPTH);
    p->i++;
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
        Json *kid = add_kid(out, &cap);
        if (is_obj) {
            skip_ws(p);
            if (p->i >= p->len || p->s[p->i] != '"')
                return fail(p, p->i, "expected a string key, got %s", show_char(p, p->i, cb, sizeof cb));
            if (parse_string(p, &out->key[out->n - 1])) return -1;
            skip_ws(p);
            if (p->i >= p->len || p->s[p->i] != ':')
                return fail(p, p->i, "expected ':' after key, got %s", show_char(p, p->i, cb, sizeof cb));
            p->i++;
        }
        if (parse_value(p, kid, depth + 1)) return -1;
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->len && p->s[p->i] == close) { p->i++; break; }
        return fail(p, p->i, "expected ',' or '%c', got %s", close, show_char(p, p->i, cb, sizeof cb));
    }
    return is_obj ? check_dup_keys(p, out) : 0;
}

static int parse_literal(Parser *p, Json *out, const char *word, JsonType t, int b) {
    size_t n = strlen(word);
    if (p->len - p->i < n || memcmp(p->s + p->i, word, n) != 0) {
        char cb[32];
        return fail(p, p->i, "unexpected %s", show_char(p, p->i, cb, sizeof cb));
    }
    out->type = t;
    out->boolean = b;
    p->i += n;
    return 0;
}

static int parse_value(Parser *p, Json *out, int depth) {
    char cb[32];
    skip_ws(p);
    out->pos = p->i;
    if (p->i >= p->len) return fail(p, p->i, "unexpected end of input, expected a value");
    if (++p->nodes > JSON_MAX_NODES) return fail(p, p->i, "more than %d values", JSON_MAX_NODES);
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, out, depth, 1);
    case '[': return parse_container(p, out, depth, 0);
    case '"':
        if (parse_string(p, &out->str)) return -1;
        out->type = JSON_STRING;
        return 0;
    case 't': return parse_literal(p, out, "true", JSON_BOOL, 1);
    case 'f': return parse_literal(p, out, "false", JSON_BOOL, 0);
    case 'n': return parse_literal(p, out, "null", JSON_NULL, 0);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, out);
        return fail(p, p->i, "unexpected %s, expected a value", show_char(p, p->i, cb, sizeof cb));
    }
}

int json_parse(const char *text, size_t len, Json *root) {
    Parser p;
    p.s = text;
    p.len = len;
    p.i = 0;
    p.nodes = 0;
    memset(root, 0, sizeof *root);
    if (parse_value(&p, root, 0)) { json_free(root); return -1; }
    skip_ws(&p);
    if (p.i != len) { json_free(root); return fail(&p, p.i, "unexpected data after the value"); }
    return 0;
}

void json_free(Json *root) {
    if (!root) return;
    for (int k = 0; k < root->n; k++) {
        if (root->kid) json_free(&root->kid[k]);
        if (root->key) free(root->key[k]);
    }
    free(root->kid);
    free(root->key);
    free(root->str);
    memset(root, 0, sizeof *root);
}

const Json *json_get(const Json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (int k = 0; k < obj->n; k++)
        if (strcmp(obj->key[k], key) == 0) return &obj->kid[k];
    return NULL;
}

const char *json_type_name(JsonType t) {
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < 6 ? names[t] : "?";
}

/* ---- writers ---- */

/* Quote s into dst (when not NULL); returns the length (without NUL). */
static size_t quote_into(char *dst, const char *s) {
    size_t o = 0;
    char tmp[8];
#define PUT(str, n) do { if (dst) memcpy(dst + o, str, n); o += n; } while (0)
    PUT("\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': PUT("\\\"", 2); break;
        case '\\': PUT("\\\\", 2); break;
        case '\n': PUT("\\n", 2); break;
        case '\r': PUT("\\r", 2); break;
        case '\t': PUT("\\t", 2); break;
        case '\b': PUT("\\b", 2); break;
        case '\f': PUT("\\f", 2); break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *c);
                PUT(tmp, 6);
            } else {
                PUT((const char *)c, 1);
            }
        }
    }
    PUT("\"", 1);
#undef PUT
    return o;
}

char *json_quote(const char *s) {
    size_t n = quote_into(NULL, s);
    char *out = xmalloc(n + 1);
    quote_into(out, s);
    out[n] = 0;
    return out;
}

void json_write_string(FILE *f, const char *s) {
    char *q = json_quote(s);
    fputs(q, f);
    free(q);
}

void json_write_number(FILE *f, double x) {
    if (!isfinite(x)) { fputs("null", f); return; }
    char buf[40];
    /* the shortest of %.15g..%.17g that reads back exactly */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    fputs(buf, f);
}
