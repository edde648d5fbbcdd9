/*
 * batch.c: the serve loop's batch calls (extension 1.6): claim several
 * requests in one statement, answer several (and claim the next ones) in
 * another, with one commit (serve.c decides when).
 *
 * Requests come back as one jsonb array, [{"data": ..., "type": ...,
 * "result_id": ...}, ...], from 1.7 with "attempts" and "deadline" too.  Its text is scanned here, not parsed into a
 * json_t: each request's data is the substring of the array that the
 * server printed for it, byte for byte what syrpc_wait_request would have
 * returned for it alone (jsonb prints a nested value as it prints the
 * value alone), so that a text handler gets the server's text and a
 * json_t handler its exact conversion (json.c), as one at a time.
 *
 * Answers go as two array literals, uuid[] and jsonb[], in text
 * parameters: each element double-quoted, with backslash and double quote
 * escaped, so that any JSON text passes as it is (the server parses it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrpc_int.h"

/* ---- scanning the requests array ---- */

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The end of the JSON string that starts at p (at its '"'), past its closing quote; NULL if it has none. */
static const char *
string_end(const char *p)
{
    for (p++; *p != '"'; p++) {
        if (*p == '\0')
            return NULL;
        if (*p == '\\' && *++p == '\0')
            return NULL;
    }
    return p + 1;
}

/*
 * The end of the JSON value that starts at p: a string, an object or an
 * array (nested as deep as the server made it: counted, not recursed), a
 * number or a literal.  NULL if the text ends first.  The server printed
 * it, so it is valid JSON: only its extent is needed.
 */
static const char *
value_end(const char *p)
{
    long depth = 0;

    if (*p == '"')
        return string_end(p);
    if (*p != '{' && *p != '[') {
        /* a number or true, false, null: up to the next delimiter */
        const char *start = p;

        while (*p != '\0' && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
               *p != '\n' && *p != '\r')
            p++;
        return p > start ? p : NULL;
    }
    for (;;) {
        switch (*p) {
        case '\0':
            return NULL;
        case '"':
            if ((p = string_end(p)) == NULL)
                return NULL;
            continue;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (--depth == 0)
                return p + 1;
            break;
        }
        p++;
    }
}

static int
hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];

        *v <<= 4;
        if (ch >= '0' && ch <= '9')
            *v |= (unsigned) (ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            *v |= (unsigned) (ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            *v |= (unsigned) (ch - 'A' + 10);
        else
            return 0;
    }
    return 1;
}

/* Append code point u as UTF-8 to dst[*n..size - 1); 0 if it does not fit. */
static int
put_utf8(char *dst, size_t size, size_t *n, unsigned u)
{
    unsigned char b[4];
    size_t len;

    if (u < 0x80)
        b[0] = (unsigned char) u, len = 1;
    else if (u < 0x800)
        b[0] = (unsigned char) (0xC0 | (u >> 6)), b[1] = (unsigned char) (0x80 | (u & 0x3F)), len = 2;
    else if (u < 0x10000)
        b[0] = (unsigned char) (0xE0 | (u >> 12)), b[1] = (unsigned char) (0x80 | ((u >> 6) & 0x3F)),
        b[2] = (unsigned char) (0x80 | (u & 0x3F)), len = 3;
    else
        b[0] = (unsigned char) (0xF0 | (u >> 18)), b[1] = (unsigned char) (0x80 | ((u >> 12) & 0x3F)),
        b[2] = (unsigned char) (0x80 | ((u >> 6) & 0x3F)), b[3] = (unsigned char) (0x80 | (u & 0x3F)), len = 4;
    if (*n + len >= size)
        return 0;
    memcpy(dst + *n, b, len);
    *n += len;
    return 1;
}

/*
 * The JSON string p..end (quotes included) unescaped into dst (size
 * bytes with the NUL); 0 if it is not a string, does not fit, or holds a
 * NUL (\u0000): then it is none of the names and uuids read here.
 */
static int
unescape(const char *p, const char *end, char *dst, size_t size)
{
    size_t n = 0;

    if (end - p < 2 || *p != '"' || end[-1] != '"')
        return 0;
    for (p++, end--; p < end; p++) {
        unsigned u, lo;

        if (*p != '\\') {
            if (n + 1 >= size)
                return 0;
            dst[n++] = *p;
            continue;
        }
        switch (*++p) {
        case '"': case '\\': case '/': u = (unsigned char) *p; break;
        case 'b': u = '\b'; break;
        case 'f': u = '\f'; break;
        case 'n': u = '\n'; break;
        case 'r': u = '\r'; break;
        case 't': u = '\t'; break;
        case 'u':
            if (end - p < 5 || !hex4(p + 1, &u))
                return 0;
            p += 4;
            if (u >= 0xD800 && u < 0xDC00 && end - p >= 7 && p[1] == '\\' && p[2] == 'u' &&
                hex4(p + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            break;
        default:
            return 0;
        }
        if (u == 0 || !put_utf8(dst, size, &n, u))
            return 0;
    }
    dst[n] = '\0';
    return 1;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (Howard Hinnant's days_from_civil). */
static long long
days_from_civil(long long y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits at *p as a number (advancing *p); -1 if they are not digits. */
static int
digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/*
 * A timestamptz as to_jsonb prints it (ISO 8601 with the session's UTC
 * offset: "2026-12-02T15:04:05.123456+00:00", offsets to the second, a
 * year of more than four digits) into seconds since the epoch;
 * "infinity" is INFINITY.  0 if it is not such a timestamp: then the
 * deadline is unknown, as from a server that does not say.
 */
static double
epoch_of_timestamp(const char *s)
{
    const char *p = s;
    long long year = 0;
    int ny = 0, mon, day, h, min, sec, sign, oh, om = 0, os = 0;
    long long fnum = 0, fden = 1;

    if (strcmp(s, "infinity") == 0)
        return INFINITY;
    while (*p >= '0' && *p <= '9' && ny < 9)
        year = year * 10 + (*p++ - '0'), ny++;
    if (ny < 4 || *p++ != '-' || (mon = digits(&p, 2)) < 1 || mon > 12 || *p++ != '-' ||
        (day = digits(&p, 2)) < 1 || day > 31 || *p++ != 'T' || (h = digits(&p, 2)) < 0 || *p++ != ':' ||
        (min = digits(&p, 2)) < 0 || *p++ != ':' || (sec = digits(&p, 2)) < 0)
        return 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (fden < 1000000000LL)
                fnum = fnum * 10 + (*p - '0'), fden *= 10;
    if (*p != '+' && *p != '-')
        return 0;
    sign = *p++ == '-' ? -1 : 1;
    if ((oh = digits(&p, 2)) < 0 || (*p == ':' && (p++, (om = digits(&p, 2)) < 0)) ||
        (*p == ':' && (p++, (os = digits(&p, 2)) < 0)) || *p != '\0')
        return 0;
    return (double) (days_from_civil(year, mon, day) * 86400 + h * 3600 + min * 60 + sec -
                     sign * (oh * 3600 + om * 60 + os)) + (double) fnum / (double) fden;
}

/*
 * Read the requests array text into reqs[0..*n) (at most max): each
 * object's "type", "result_id" and "data" (its text as printed), and
 * "attempts" and "deadline" when they are there (1.7); other keys are
 * skipped, so that the server may add some.  Returns 0 (with why in err) if the text is not
 * such an array; 1 else, also when out of memory (a request's text NULL):
 * the caller checks.
 */
static int
scan_requests(const char *text, syrpc_request *reqs, int max, int *n, char *err, size_t errsize)
{
    const char *p = skip_ws(text);

    *n = 0;
    if (*p++ != '[') {
        snprintf(err, errsize, "not an array");
        return 0;
    }
    p = skip_ws(p);
    if (*p == ']')
        return 1;
    for (;;) {
        syrpc_request *req = &reqs[*n];
        int has_type = 0, has_id = 0;

        if (*n == max) {
            snprintf(err, errsize, "more than the %d requests asked for", max);
            return 0;
        }
        memset(req, 0, sizeof(*req));
        (*n)++;
        if (*p++ != '{') {
            snprintf(err, errsize, "request %d is not an object", *n);
            return 0;
        }
        p = skip_ws(p);
        while (*p != '}') {
            char key[16];
            const char *key_end, *v, *v_end;

            if (*p != '"' || (key_end = string_end(p)) == NULL) {
                snprintf(err, errsize, "request %d: a key expected", *n);
                return 0;
            }
            if (!unescape(p, key_end, key, sizeof(key)))
                key[0] = '\0';      /* a long key: none of ours */
            p = skip_ws(key_end);
            if (*p++ != ':') {
                snprintf(err, errsize, "request %d: ':' expected", *n);
                return 0;
            }
            v = skip_ws(p);
            if ((v_end = value_end(v)) == NULL) {
                snprintf(err, errsize, "request %d: the value of \"%s\" is cut short", *n, key);
                return 0;
            }
            if (strcmp(key, "data") == 0) {
                free(req->text);
                req->text = strndup(v, (size_t) (v_end - v));
                if (req->text == NULL)
                    return 1;
            } else if (strcmp(key, "type") == 0) {
                if (!unescape(v, v_end, req->type, sizeof(req->type))) {
                    snprintf(err, errsize, "request %d: its type is not a name", *n);
                    return 0;
                }
                has_type = 1;
            } else if (strcmp(key, "result_id") == 0) {
                if (!unescape(v, v_end, req->result_id, sizeof(req->result_id))) {
                    snprintf(err, errsize, "request %d: its result_id is not a uuid", *n);
                    return 0;
                }
                has_id = 1;
            } else if (strcmp(key, "attempts") == 0 && *v >= '0' && *v <= '9')
                req->attempts = atoi(v);
            else if (strcmp(key, "deadline") == 0) {
                char ts[64];

                req->deadline = unescape(v, v_end, ts, sizeof(ts)) ? epoch_of_timestamp(ts) : 0;
            }
            p = skip_ws(v_end);
            if (*p == ',')
                p = skip_ws(p + 1);
            else if (*p != '}') {
                snprintf(err, errsize, "request %d: ',' or '}' expected", *n);
                return 0;
            }
        }
        if (!has_type || !has_id || req->text == NULL) {
            snprintf(err, errsize, "request %d lacks %s", *n,
                     !has_type ? "its type" : !has_id ? "its result_id" : "its data");
            return 0;
        }
        p = skip_ws(p + 1);
        if (*p == ']')
            return 1;
        if (*p != ',') {
            snprintf(err, errsize, "',' or ']' expected after request %d", *n);
            return 0;
        }
        p = skip_ws(p + 1);
    }
}

/*
 * The requests of the statement's result (one row, one column: the
 * array) into reqs[0..*n); clears res.  SYRPC_TIMEOUT when the array is
 * empty.  Claimed requests that cannot be read (out of memory, an array
 * not as expected) come back by their leases.
 */
static syrpc_status
take_requests(syrpc_conn *c, PGresult *res, syrpc_request *reqs, int max, int wait_ms, int *n)
{
    char err[200];
    int ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        scan_requests(PQgetvalue(res, 0, 0), reqs, max, n, err, sizeof(err));

    PQclear(res);
    if (!ok || (*n > 0 && reqs[*n - 1].text == NULL)) {
        for (int i = 0; i < *n; i++)
            syrpc__request_clear(&reqs[i]);
        if (ok)
            syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
        else
            syrpc__fail(c, SYRPC_SERVER_ERROR, "the claimed requests cannot be read: %s", err);
        *n = 0;
        return c->status;
    }
    if (*n == 0)
        return syrpc__fail(c, SYRPC_TIMEOUT, "no request within %d ms", wait_ms);
    return syrpc__ok(c);
}

syrpc_status
syrpc__wait_requests(syrpc_conn *c, int max, int wait_ms, syrpc_request *reqs, int *n)
{
    char sql[512], count[16], secs[32];
    const char *values[3] = { c->app, count, secs };
    int slice = syrpc__slice_of(wait_ms, secs, sizeof(secs));
    PGresult *res;

    *n = 0;
    if (!syrpc__ready(c))
        return c->status;
    snprintf(count, sizeof(count), "%d", max);
    snprintf(sql, sizeof(sql), "CALL %s.syrpc_wait_requests($1, $2::pg_catalog.int4, $3::pg_catalog.float8)",
             c->schema);
    if ((res = syrpc__run(c, sql, 3, values, slice + SYRPC_GRACE_MS)) == NULL) {
        if (syrpc__statement_timed_out(c))
            c->status = SYRPC_TIMEOUT;
        return c->status;
    }
    return take_requests(c, res, reqs, max, slice, n);
}

/* ---- the answers ---- */

/* The array literal {"e0","e1",...} of elems[0..n), malloc'd; NULL if out of memory. */
static char *
array_literal(char *const *elems, int n)
{
    size_t len = 3;
    char *lit, *q;

    for (int i = 0; i < n; i++) {
        len += 3;
        for (const char *p = elems[i]; *p; p++)
            len += (*p == '"' || *p == '\\') ? 2 : 1;
    }
    if ((lit = malloc(len)) == NULL)
        return NULL;
    q = lit;
    *q++ = '{';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            *q++ = ',';
        *q++ = '"';
        for (const char *p = elems[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        *q++ = '"';
    }
    *q++ = '}';
    *q = '\0';
    return lit;
}

syrpc_status
syrpc__put_results_wait_requests(syrpc_conn *c, int n, char *const *ids, char *const *json,
                                 int max, syrpc_request *next, int *nnext)
{
    char sql[512], count[16], secs[32];
    const char *values[5] = { c->app, NULL, NULL, count, secs };
    char *id_array = NULL, *data_array = NULL;
    int slice = syrpc__slice_of(SYRPC_WAIT_SLICE_MS, secs, sizeof(secs));
    PGresult *res;

    *nnext = 0;
    if (!syrpc__ready(c))
        return c->status;
    if ((id_array = array_literal(ids, n)) == NULL || (data_array = array_literal(json, n)) == NULL) {
        free(id_array);
        return syrpc__fail(c, SYRPC_NO_MEMORY, "out of memory");
    }
    values[1] = id_array;
    values[2] = data_array;
    if (max == 0) {
        /* the last answers of syrpc_serve's count: claim nothing more */
        snprintf(sql, sizeof(sql), "SELECT %s.syrpc_put_results($1, $2::pg_catalog.uuid[], $3::pg_catalog.jsonb[])",
                 c->schema);
        res = syrpc__run(c, sql, 3, values, -1);
    } else {
        snprintf(count, sizeof(count), "%d", max);
        snprintf(sql, sizeof(sql), "CALL %s.syrpc_put_results_wait_requests($1, $2::pg_catalog.uuid[],"
                 " $3::pg_catalog.jsonb[], $4::pg_catalog.int4, $5::pg_catalog.float8)", c->schema);
        res = syrpc__run(c, sql, 5, values, slice + SYRPC_GRACE_MS);
    }
    free(id_array);
    free(data_array);
    if (res == NULL) {
        if (max > 0 && syrpc__statement_timed_out(c))
            c->status = SYRPC_TIMEOUT;
        return c->status;
    }
    if (max == 0) {
        PQclear(res);
        return syrpc__ok(c);
    }
    return take_requests(c, res, next, max, SYRPC_WAIT_SLICE_MS, nnext);
}
