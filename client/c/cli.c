/*
 * cli.c: the syrpc command.
 *
 *   syrpc [-d CONNINFO] call APP TYPE JSON [--timeout S]
 *   syrpc [-d CONNINFO] cancel APP RESULT_ID
 *   syrpc [-d CONNINFO] serve APP (--echo | --exec CMD) [--count N] [--batch N]
 *   syrpc [-d CONNINFO] stats [APP] [--watch [SECONDS]] [--count N]
 *   syrpc [-d CONNINFO] metrics [APP]
 *
 * The connection comes from libpq's environment (PGHOST, PGDATABASE, ...)
 * or -d CONNINFO.  Exit codes: see usage().  JSON goes through as text,
 * never through a json_t: what the server gets and gives is printed and
 * passed on unchanged (every digit of every number).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "syrpc.h"
#include "cli.h"


volatile sig_atomic_t stop_flag = 0;

void on_signal(int sig) { (void) sig; stop_flag = 1; }

static const char *usage_main =
    "Usage: syrpc [-d CONNINFO] COMMAND ARGS...\n"
    "\n"
    "RPC over PostgreSQL (needs CREATE EXTENSION syrpc in the database).\n"
    "\n"
    "Commands:\n"
    "  call APP TYPE JSON [--timeout S]     put a request, wait for its result, print it\n"
    "  cancel APP RESULT_ID                 cancel a request (extension 1.7)\n"
    "  serve APP (--echo | --exec CMD)      answer requests of APP\n"
    "  stats [APP] [--watch [S]]            print the queues' statistics (every S seconds)\n"
    "  metrics [APP]                        print them in Prometheus's text format\n"
    "\n"
    "Options:\n"
    "  -d, --dbname CONNINFO   libpq connection string (default: PGHOST, PGDATABASE, ...)\n"
    "  --version               print the version\n"
    "  -h, --help              this help; COMMAND --help for a command's\n"
    "\n"
    "Exit codes: 0 ok, 1 error, 2 usage (also: JSON the server refuses), 3 timeout,\n"
    "4 connection error, 5 request failed (no worker answered it within max_attempts\n"
    "leases, a worker gave it up, or it expired), 6 remote error (the worker answered\n"
    "with an error: its message and detail go to stderr), 7 the request was cancelled.\n";

static const char *usage_call =
    "Usage: syrpc call APP TYPE JSON [--timeout S]\n"
    "\n"
    "Put a request of TYPE with data JSON (sent as is) for APP, wait for its\n"
    "result and print it as the server has it.  --timeout S: give up after S\n"
    "seconds (default 30, 0 to 2147483; exit code 3).  JSON that the server\n"
    "refuses: exit code 2.  The request failed or expired: exit code 5.  The\n"
    "worker answered with an error (extension 1.7): its message, and its detail\n"
    "(JSON) after \"DETAIL: \", go to stderr, exit code 6.  The request was\n"
    "cancelled: exit code 7.\n";

static const char *usage_cancel =
    "Usage: syrpc cancel APP RESULT_ID\n"
    "\n"
    "Cancel request RESULT_ID of APP (extension 1.7): a queued request is\n"
    "withdrawn, one in flight marked so that its answer is dropped; its caller\n"
    "gets \"cancelled\" (syrpc call exits 7).  Prints \"cancelled\", or \"already\n"
    "ended\" if it had been answered, failed, expired or cancelled before (exit\n"
    "code 0 both).  An unknown RESULT_ID, or another app's: exit code 1.\n";

static const char *usage_serve =
    "Usage: syrpc serve APP (--echo | --exec CMD) [--count N] [--batch N]\n"
    "\n"
    "Answer requests of APP until interrupted (SIGINT, SIGTERM) or N (1 or more)\n"
    "answered.\n"
    "  --echo      answer every request with its own data, as the server sent it\n"
    "  --exec CMD  run CMD (with sh -c) per request: the request data (JSON text)\n"
    "              on stdin, SYRPC_TYPE in its environment; its stdout, which\n"
    "              must be JSON, is the result, as is.  If CMD fails (exits\n"
    "              non-zero, is killed, prints nothing), the answer is a remote\n"
    "              error (its caller exits 6) saying how, with the detail\n"
    "              {\"exit_status\": N} or {\"signal\": N} and \"stderr\": the first\n"
    "              1024 bytes of its stderr (which goes to serve's stderr too);\n"
    "              before extension 1.7 the result is {\"error\": \"command\n"
    "              failed\", ...}.  If its output is not JSON, the request is\n"
    "              failed with the server's reason (its caller exits 5).\n"
    "  --batch N   claim up to N requests at once (1 to 1000, default 8; 1: one\n"
    "              at a time) and answer them together, in one commit\n"
    "              (extension 1.6; older ones serve one at a time)\n";



int
exit_code_of(syrpc_status st)
{
    switch (st) {
    case SYRPC_OK: return EXIT_OK;
    case SYRPC_TIMEOUT: return EXIT_TIMEOUT;
    case SYRPC_CONNECTION: return EXIT_CONNECTION;
    case SYRPC_REQUEST_FAILED: return EXIT_REQUEST_FAILED;
    case SYRPC_REMOTE_ERROR: return EXIT_REMOTE_ERROR;
    case SYRPC_CANCELLED: return EXIT_CANCELLED;
    default: return EXIT_ERROR;
    }
}

int
report(syrpc_conn *c)
{
    syrpc_status st = syrpc_status_of(c);

    fprintf(stderr, "syrpc: %s: %s\n", syrpc_status_name(st), syrpc_error_message(c));
    if (syrpc_error_detail(c)[0])
        fprintf(stderr, "DETAIL: %s\n", syrpc_error_detail(c));
    if (syrpc_error_hint(c)[0])
        fprintf(stderr, "HINT: %s\n", syrpc_error_hint(c));
    return exit_code_of(st);
}

int
wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int
usage_error(const char *usage, const char *msg)
{
    fprintf(stderr, "syrpc: %s\n%s", msg, usage);
    return EXIT_USAGE;
}

syrpc_conn *
connect_or_report(const char *conninfo, const char *app, int *code)
{
    syrpc_conn *c = syrpc_connect(conninfo, app);

    if (c == NULL) {
        fprintf(stderr, "syrpc: out of memory\n");
        *code = EXIT_ERROR;
    } else if (syrpc_status_of(c) != SYRPC_OK) {
        *code = report(c);
        syrpc_finish(c);
        c = NULL;
    }
    return c;
}

/* Seconds as timeout_ms: a finite number from 0 to INT_MAX / 1000; -1 if not. */
int
parse_timeout(const char *arg)
{
    char *end;
    double s;

    errno = 0;
    s = strtod(arg, &end);
    if (end == arg || *end != '\0' || errno != 0 || !isfinite(s) || s < 0 || s > INT_MAX / 1000)
        return -1;
    return (int) (s * 1000);
}

/* A count: digits only, 1 to LONG_MAX; -1 if not. */
long
parse_count(const char *arg)
{
    char *end;
    long n;

    if (arg[0] < '0' || arg[0] > '9')
        return -1;
    errno = 0;
    n = strtol(arg, &end, 10);
    if (*end != '\0' || errno != 0 || n < 1)
        return -1;
    return n;
}

static int
cmd_call(const char *conninfo, int argc, char **argv)
{
    int timeout_ms = 30000;
    syrpc_conn *c;
    int code = EXIT_OK;
    char *result;

    if (wants_help(argc, argv)) {
        fputs(usage_call, stdout);
        return EXIT_OK;
    }
    if (argc == 5 && strcmp(argv[3], "--timeout") == 0) {
        if ((timeout_ms = parse_timeout(argv[4])) < 0)
            return usage_error(usage_call, "--timeout takes a number of seconds from 0 to 2147483");
        argc = 3;
    }
    if (argc != 3)
        return usage_error(usage_call, "call takes APP TYPE JSON");
    if ((c = connect_or_report(conninfo, argv[0], &code)) == NULL)
        return code;
    signal(SIGINT, on_signal);
    syrpc_set_interrupt_flag(c, &stop_flag);
    /* the JSON goes as is: the server parses it (a local parse would refuse big numbers) */
    if (syrpc_call_text(c, argv[1], argv[2], timeout_ms, &result) != SYRPC_OK) {
        code = report(c);
        if (strcmp(syrpc_error_sqlstate(c), "22P02") == 0)
            code = EXIT_USAGE;      /* invalid input syntax for type json */
    } else {
        puts(result);
        syrpc_free(result);
    }
    syrpc_finish(c);
    return code;
}

static int
cmd_cancel(const char *conninfo, int argc, char **argv)
{
    syrpc_conn *c;
    int code = EXIT_OK, cancelled;

    if (wants_help(argc, argv)) {
        fputs(usage_cancel, stdout);
        return EXIT_OK;
    }
    if (argc != 2)
        return usage_error(usage_cancel, "cancel takes APP RESULT_ID");
    if ((c = connect_or_report(conninfo, argv[0], &code)) == NULL)
        return code;
    if (syrpc_cancel(c, argv[1], &cancelled) != SYRPC_OK)
        code = report(c);
    else
        puts(cancelled ? "cancelled" : "already ended");
    syrpc_finish(c);
    return code;
}

static char *
echo_handler(const syrpc_request *req, void *arg)
{
    (void) arg;
    return strdup(syrpc_request_data_text(req));
}

/* {"error": "command failed", KEY: value} as JSON text, malloc'd: the answer before extension 1.7. */
static char *
command_failed(const char *key, json_t *value)
{
    json_t *obj = json_pack("{s:s, s:o}", "error", "command failed", key, value);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return text;
}

/* The first bytes of a command's stderr that a remote error's detail keeps. */
#define STDERR_KEPT 1024

/*
 * src[0..n) as valid UTF-8 without NULs, into dst (room for 3 * n + 1):
 * a byte that starts no valid character, and a NUL (which jsonb cannot
 * hold), becomes U+FFFD, so that any stderr fits in a JSON string.
 */
static void
as_utf8(char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned char b = src[i];
        size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        unsigned long u = len == 1 ? b : len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
        int ok = len > 0 && i + len <= n && b != 0;

        for (size_t k = 1; ok && k < len; k++) {
            ok = (src[i + k] & 0xC0) == 0x80;
            u = (u << 6) | (src[i + k] & 0x3F);
        }
        if (ok && len > 1)
            ok = !(len == 2 && u < 0x80) && !(len == 3 && u < 0x800) && !(len == 4 && u < 0x10000) &&
                !(u >= 0xD800 && u < 0xE000) && u <= 0x10FFFF;
        if (ok) {
            memcpy(dst + o, src + i, len);
            o += len;
            i += len;
        } else {
            memcpy(dst + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    dst[o] = '\0';
}

/*
 * Answer req with a remote error (extension 1.7) saying how the command
 * failed: message, and a detail of key: value with the stderr kept (if
 * any); value is stolen.  Returns the answer for older servers, which
 * have no remote errors: fallback (malloc'd, stolen).
 */
static char *
remote_error(const syrpc_request *req, const char *message, const char *key, json_t *value,
             const unsigned char *err, size_t nerr, char *fallback)
{
    json_t *detail = json_object();
    char *text = nerr > 0 ? malloc(3 * nerr + 1) : NULL;

    if (detail != NULL && value != NULL)
        json_object_set_new(detail, key, value);
    else
        json_decref(value);
    if (detail != NULL && text != NULL) {
        as_utf8(text, err, nerr);
        json_object_set_new(detail, "stderr", json_string(text));
    }
    free(text);
    if (syrpc_reply_error(req, message, detail) != SYRPC_OK)
        syrpc_reply_error(req, message, NULL);     /* out of memory for the detail: the message alone */
    json_decref(detail);
    return fallback;
}

/* Append n bytes to the growing buffer *buf (*len used, *cap allocated); 0 if out of memory. */
static int
append(char **buf, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = *cap * 2 + n + 4096;
        char *more = realloc(*buf, want);

        if (more == NULL)
            return 0;
        *buf = more;
        *cap = want;
    }
    memcpy(*buf + *len, bytes, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 1;
}

/*
 * Run CMD with the request's JSON text on stdin; its stdout, as is, is the
 * result (the server refuses it if it is not JSON, and the serve loop then
 * fails the request with the server's reason).  Its stderr goes on to
 * ours, and its first bytes into the remote error of a command that
 * fails: one that exits non-zero, is killed, or prints nothing.
 */
static char *
exec_handler(const syrpc_request *req, void *arg)
{
    const char *cmd = arg, *data = syrpc_request_data_text(req);
    FILE *in = tmpfile();
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    pid_t pid;
    char *buf = NULL, chunk[4096], message[128];
    unsigned char kept[STDERR_KEPT];
    size_t len = 0, cap = 0, nkept = 0;
    int status = 0, no_memory = 0;
    struct pollfd fds[2];

    if (in == NULL || fputs(data, in) == EOF || fflush(in) != 0 ||
        fseek(in, 0, SEEK_SET) != 0 || pipe(out) != 0 || pipe(errp) != 0) {
        const char *why = strerror(errno);

        snprintf(message, sizeof(message), "could not run the command: %s", why);
        if (in)
            fclose(in);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
        }
        return remote_error(req, message, "error", json_string(why), NULL, 0,
                            command_failed("reason", json_string(why)));
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(fileno(in), 0);
        dup2(out[1], 1);
        dup2(errp[1], 2);
        close(out[0]);
        close(out[1]);
        close(errp[0]);
        close(errp[1]);
        setenv("SYRPC_TYPE", syrpc_request_type(req), 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    close(out[1]);
    close(errp[1]);
    fclose(in);
    if (pid < 0) {
        const char *why = strerror(errno);

        close(out[0]);
        close(errp[0]);
        snprintf(message, sizeof(message), "could not run the command: %s", why);
        return remote_error(req, message, "error", json_string(why), NULL, 0,
                            command_failed("status", json_integer(-1)));
    }
    /* both pipes at once, so that a command that fills one is never stuck on it */
    fds[0] = (struct pollfd) { out[0], POLLIN, 0 };
    fds[1] = (struct pollfd) { errp[0], POLLIN, 0 };
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            ssize_t n;

            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            n = read(fds[i].fd, chunk, sizeof(chunk));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
            } else if (i == 0) {
                if (!no_memory && !append(&buf, &len, &cap, chunk, (size_t) n))
                    no_memory = 1;
            } else {
                size_t keep = STDERR_KEPT - nkept < (size_t) n ? STDERR_KEPT - nkept : (size_t) n;

                memcpy(kept + nkept, chunk, keep);
                nkept += keep;
                if (write(2, chunk, (size_t) n) < 0) {
                    /* our stderr is gone: the command's still counts in the detail */
                }
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        free(buf);
        snprintf(message, sizeof(message), "the command was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return remote_error(req, message, "signal", json_integer(WTERMSIG(status)), kept, nkept,
                            command_failed("status", json_integer(128 + WTERMSIG(status))));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

        free(buf);
        snprintf(message, sizeof(message), "the command exited with status %d", code);
        return remote_error(req, message, "exit_status", json_integer(code), kept, nkept,
                            command_failed("status", json_integer(code)));
    }
    if (no_memory) {
        free(buf);
        return remote_error(req, "out of memory for the command's output", "exit_status", json_integer(0),
                            kept, nkept, command_failed("status", json_integer(-1)));
    }
    if (buf == NULL || strspn(buf, " \t\r\n") == len) {
        /* before 1.7 the answer is its output all the same: the server refuses it, as it did */
        return remote_error(req, "the command printed nothing", "exit_status", json_integer(0), kept, nkept,
                            buf != NULL ? buf : strdup(""));
    }
    return buf;
}

static int
cmd_serve(const char *conninfo, int argc, char **argv)
{
    const char *exec_cmd = NULL;
    int echo = 0, code = EXIT_OK;
    long count = 0, batch = 0;
    syrpc_conn *c;
    struct sigaction sa;

    if (wants_help(argc, argv)) {
        fputs(usage_serve, stdout);
        return EXIT_OK;
    }
    if (argc < 2)
        return usage_error(usage_serve, "serve takes APP and --echo or --exec CMD");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--echo") == 0)
            echo = 1;
        else if (strcmp(argv[i], "--exec") == 0 && i + 1 < argc)
            exec_cmd = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            if ((count = parse_count(argv[++i])) < 0)
                return usage_error(usage_serve, "--count takes a whole number, 1 or more");
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            if ((batch = parse_count(argv[++i])) < 0 || batch > 1000)
                return usage_error(usage_serve, "--batch takes a whole number from 1 to 1000");
        } else
            return usage_error(usage_serve, "unknown option");
    }
    if (echo == (exec_cmd != NULL))
        return usage_error(usage_serve, "give one of --echo and --exec CMD");
    if ((c = connect_or_report(conninfo, argv[0], &code)) == NULL)
        return code;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;     /* no SA_RESTART: a signal ends the wait */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    syrpc_set_interrupt_flag(c, &stop_flag);
    if (batch > 0)
        syrpc_set_batch(c, (int) batch);
    if (echo)
        syrpc_register_text(c, NULL, echo_handler, NULL);
    else
        syrpc_register_text(c, NULL, exec_handler, (void *) exec_cmd);
    switch (syrpc_serve(c, count)) {
    case SYRPC_OK:
    case SYRPC_INTERRUPTED:
        break;
    default:
        code = report(c);
    }
    syrpc_finish(c);
    return code;
}

int
main(int argc, char **argv)
{
    const char *conninfo = "";
    int i = 1;

    while (i < argc && argv[i][0] == '-') {
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--dbname") == 0) && i + 1 < argc) {
            conninfo = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("syrpc %s\n", SYRPC_VERSION);
            return EXIT_OK;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_main, stdout);
            return EXIT_OK;
        } else
            return usage_error(usage_main, "unknown option");
    }
    if (i >= argc)
        return usage_error(usage_main, "no command given");
    if (strcmp(argv[i], "call") == 0)
        return cmd_call(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "cancel") == 0)
        return cmd_cancel(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "serve") == 0)
        return cmd_serve(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "stats") == 0)
        return cmd_stats(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "metrics") == 0)
        return cmd_metrics(conninfo, argc - i - 1, argv + i + 1);
    return usage_error(usage_main, "unknown command");
}
