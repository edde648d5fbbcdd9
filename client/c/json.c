/*
 * json.c: exact conversion between JSON text and jansson's json_t.
 *
 * The server keeps numbers as jsonb numerics, with every digit; a json_t
 * holds integers in json_int_t and reals in a double.  Neither direction
 * may change a value silently:
 *
 *   - encode (json_t -> text) writes each real with the fewest digits that
 *     parse back to the same double ("%.17g" would turn 1.1 into
 *     1.1000000000000001), and refuses NaN and infinities;
 *   - decode (text -> json_t) checks every number token first: an integer
 *     must fit json_int_t, or be exactly a double (then it becomes a real);
 *     a real must be numerically equal, as a decimal, to the shortest form
 *     of the double it parses to (1.10 is fine, 0.12345678901234567890123
 *     is not).  A value that cannot be held exactly is refused with a
 *     message saying which number and why.
 *
 * No state: safe in any number of threads.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrpc_int.h"

#ifdef JSON_PARSER_MAX_DEPTH
#define MAX_DEPTH JSON_PARSER_MAX_DEPTH
#else
#define MAX_DEPTH 2048
#endif

#if JSON_INTEGER_IS_LONG_LONG
#define INT_LO LLONG_MIN
#define INT_HI LLONG_MAX
#else
#define INT_LO LONG_MIN
#define INT_HI LONG_MAX
#endif

/* How much of a number a message quotes. */
#define QUOTE_MAX 40

static void
set_err(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

/* The token s[0..len) for a message, shortened to QUOTE_MAX characters. */
static void
quote_token(char *dst, size_t size, const char *s, size_t len)
{
    if (len > QUOTE_MAX)
        snprintf(dst, size, "%.*s... (%zu digits)", QUOTE_MAX, s, len);
    else
        snprintf(dst, size, "%.*s", (int) len, s);
}

/* ---- numbers ---- */

/*
 * A number's text in this locale's notation (strtod and printf follow
 * LC_NUMERIC) from JSON's, or back: swap the decimal point.
 */
static void
swap_point(char *buf, int to_json)
{
    const char *point = localeconv()->decimal_point;
    char *p;

    if (point == NULL || strcmp(point, ".") == 0 || strlen(point) != 1)
        return;
    if ((p = strchr(buf, to_json ? point[0] : '.')) != NULL)
        *p = to_json ? '.' : point[0];
}

/* d (finite) with the fewest significant digits that read back as d, JSON notation. */
static void
shortest_real(double d, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    swap_point(buf, 1);
}

/* Parse the JSON number s[0..len) as a double (locale-independent). */
static double
parse_double(const char *s, size_t len)
{
    char small[64], *buf = len < sizeof(small) ? small : malloc(len + 1);
    double d;

    if (buf == NULL)
        return NAN;
    memcpy(buf, s, len);
    buf[len] = '\0';
    swap_point(buf, 0);
    d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return d;
}

/*
 * A decimal number in a normal form: its significant digits (no leading
 * or trailing zeros; none for zero) and exp, such that the value is
 * sign 0.DIGITS x 10^exp.  digits has room for len + 1 characters.
 */
static void
normalize(const char *s, size_t len, int *neg, char *digits, long *exp)
{
    size_t i = 0, n = 0;
    long point = -1, e = 0, lead = 0;
    int seen = 0;

    *neg = len > 0 && s[0] == '-';
    if (*neg)
        i++;
    for (; i < len && (isdigit((unsigned char) s[i]) || s[i] == '.'); i++) {
        if (s[i] == '.') {
            point = (long) n + lead;
            continue;
        }
        if (!seen && s[i] == '0') {
            lead++;             /* a leading zero: shifts nothing into digits */
            continue;
        }
        seen = 1;
        digits[n++] = s[i];
    }
    if (point < 0)
        point = (long) n + lead;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;

        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < len && isdigit((unsigned char) s[i]); i++)
            if (e < 1000000000L)
                e = e * 10 + (s[i] - '0');
        if (eneg)
            e = -e;
    }
    while (n > 0 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    /* value = 0.DIGITS x 10^(point - lead) x 10^e */
    *exp = n == 0 ? 0 : point - lead + e;
    if (n == 0)
        *neg = 0;
}

/* Whether the decimal numbers a and b are equal (1.10 = 1.1, -0 = 0). */
static int
decimal_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    char *da = malloc(alen + 1), *db = malloc(blen + 1);
    int na, nb, eq = 0;
    long ea, eb;

    if (da && db) {
        normalize(a, alen, &na, da, &ea);
        normalize(b, blen, &nb, db, &eb);
        eq = na == nb && ea == eb && strcmp(da, db) == 0;
    }
    free(da);
    free(db);
    return eq;
}

/*
 * Check the number token s[0..len): 0 and a message in err if no json_t
 * holds it exactly; *as_real set if it is an integer beyond json_int_t
 * that is exactly a double (jansson must read it as a real).
 */
static int
check_number(const char *s, size_t len, int *as_real, char *err, size_t errsize)
{
    int is_int = memchr(s, '.', len) == NULL && memchr(s, 'e', len) == NULL &&
                 memchr(s, 'E', len) == NULL;
    char quoted[QUOTE_MAX + 32], shortest[40];
    double d;

    *as_real = 0;
    if (is_int) {
        char buf[32];
        long long v;
        char *end;

        if (len < sizeof(buf)) {
            memcpy(buf, s, len);
            buf[len] = '\0';
            errno = 0;
            v = strtoll(buf, &end, 10);
            if (errno == 0 && *end == '\0' && v >= INT_LO && v <= INT_HI)
                return 1;
        }
    }
    d = parse_double(s, len);
    quote_token(quoted, sizeof(quoted), s, len);
    if (!isfinite(d)) {
        set_err(err, errsize, "number %s is beyond the range of a double", quoted);
        return 0;
    }
    shortest_real(d, shortest, sizeof(shortest));
    if (!decimal_equal(s, len, shortest, strlen(shortest))) {
        if (is_int)
            set_err(err, errsize, "integer %s does not fit in a json_int_t (64 bits), and a double would make it %s",
                    quoted, shortest);
        else
            set_err(err, errsize, "number %s has more precision than a double holds (it would become %s)",
                    quoted, shortest);
        return 0;
    }
    *as_real = is_int;
    return 1;
}

/* ---- decode ---- */

int
syrpc__decode_exact(const char *text, json_t **result, char *err, size_t errsize)
{
    size_t len = strlen(text), extra = 0;
    const char *p;
    char *fixed = NULL, *out = NULL;
    json_error_t jerr;
    json_t *j;

    *result = NULL;
    /* every number token, outside strings */
    for (int pass = 0; pass < 2; pass++) {
        for (p = text; *p;) {
            if (*p == '"') {
                if (out)
                    *out++ = *p;
                for (p++; *p && *p != '"'; p++) {
                    if (*p == '\\' && p[1]) {
                        if (out)
                            *out++ = *p;
                        p++;
                    }
                    if (out)
                        *out++ = *p;
                }
                if (*p) {
                    if (out)
                        *out++ = *p;
                    p++;
                }
            } else if (*p == '-' || isdigit((unsigned char) *p)) {
                const char *start = p;
                int as_real;

                while (*p && (isdigit((unsigned char) *p) || strchr("-+.eE", *p)))
                    p++;
                if (pass == 0) {
                    if (!check_number(start, p - start, &as_real, err, errsize))
                        return SYRPC__REFUSED;
                    extra += as_real ? 2 : 0;
                } else {
                    memcpy(out, start, p - start);
                    out += p - start;
                    if (check_number(start, p - start, &as_real, err, errsize) && as_real) {
                        memcpy(out, ".0", 2);
                        out += 2;
                    }
                }
            } else {
                if (out)
                    *out++ = *p;
                p++;
            }
        }
        if (pass == 0 && extra == 0)
            break;              /* nothing to rewrite */
        if (pass == 0) {
            if ((fixed = out = malloc(len + extra + 1)) == NULL) {
                set_err(err, errsize, "out of memory");
                return SYRPC__NO_MEMORY;
            }
        } else
            *out = '\0';
    }
    j = json_loads(fixed ? fixed : text, JSON_DECODE_ANY, &jerr);
    free(fixed);
    *result = j;
    if (j != NULL)
        return SYRPC__EXACT;
    set_err(err, errsize, "%s", jerr.text);
    /* jansson says "out of memory" when it is */
    return strstr(jerr.text, "out of memory") ? SYRPC__NO_MEMORY : SYRPC__REFUSED;
}

/* ---- encode ---- */

typedef struct buf {
    char *data;
    size_t len, cap;
    int failed;                 /* out of memory */
} buf;

static void
put(buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *more;

        while (b->len + n + 1 > cap)
            cap *= 2;
        if ((more = realloc(b->data, cap)) == NULL) {
            b->failed = 1;
            return;
        }
        b->data = more;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void
put_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];
        char esc[8];

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': put(b, "\\\"", 2); break;
        case '\\': put(b, "\\\\", 2); break;
        case '\n': put(b, "\\n", 2); break;
        case '\r': put(b, "\\r", 2); break;
        case '\t': put(b, "\\t", 2); break;
        case '\b': put(b, "\\b", 2); break;
        case '\f': put(b, "\\f", 2); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            put(b, esc, 6);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static int
encode_value(buf *b, const json_t *v, int depth, char *err, size_t errsize)
{
    char num[48];

    if (depth > MAX_DEPTH) {
        set_err(err, errsize, "data is nested deeper than %d levels (or refers to itself)", MAX_DEPTH);
        return 0;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        int first = 1;

        put(b, "{", 1);
        json_object_foreach((json_t *) v, key, member) {
            if (!first)
                put(b, ", ", 2);
            first = 0;
            put_str(b, key, strlen(key));
            put(b, ": ", 2);
            if (!encode_value(b, member, depth + 1, err, errsize))
                return 0;
        }
        put(b, "}", 1);
        return 1;
    }
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                put(b, ", ", 2);
            if (!encode_value(b, json_array_get(v, i), depth + 1, err, errsize))
                return 0;
        }
        put(b, "]", 1);
        return 1;
    case JSON_STRING:
        put_str(b, json_string_value(v), json_string_length(v));
        return 1;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(b, num, strlen(num));
        return 1;
    case JSON_REAL: {
        double d = json_real_value(v);

        if (!isfinite(d)) {
            set_err(err, errsize, "a real that is %s cannot be sent as JSON", isnan(d) ? "NaN" : "infinite");
            return 0;
        }
        shortest_real(d, num, sizeof(num));
        put(b, num, strlen(num));
        if (strpbrk(num, ".eE") == NULL)
            put(b, ".0", 2);    /* stays a real when read back */
        return 1;
    }
    case JSON_TRUE:
        put(b, "true", 4);
        return 1;
    case JSON_FALSE:
        put(b, "false", 5);
        return 1;
    case JSON_NULL:
        put(b, "null", 4);
        return 1;
    }
    set_err(err, errsize, "unknown json_t type");
    return 0;
}

int
syrpc__encode_exact(const json_t *v, char **text, char *err, size_t errsize)
{
    buf b = { NULL, 0, 0, 0 };

    *text = NULL;
    if (!encode_value(&b, v, 0, err, errsize)) {
        free(b.data);
        return SYRPC__REFUSED;
    }
    if (b.failed) {
        free(b.data);
        set_err(err, errsize, "out of memory");
        return SYRPC__NO_MEMORY;
    }
    *text = b.data;
    return SYRPC__EXACT;
}
