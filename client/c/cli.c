/*
 * cli.c: the syrpc command.
 *
 *   syrpc [-d CONNINFO] call APP TYPE JSON [--timeout S]
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
    "leases, a worker gave it up, or it expired).\n";

static const char *usage_call =
    "Usage: syrpc call APP TYPE JSON [--timeout S]\n"
    "\n"
    "Put a request of TYPE with data JSON (sent as is) for APP, wait for its\n"
    "result and print it as the server has it.  --timeout S: give up after S\n"
    "seconds (default 30, 0 to 2147483; exit code 3).  JSON that the server\n"
    "refuses: exit code 2.\n";

static const char *usage_serve =
    "Usage: syrpc serve APP (--echo | --exec CMD) [--count N] [--batch N]\n"
    "\n"
    "Answer requests of APP until interrupted (SIGINT, SIGTERM) or N (1 or more)\n"
    "answered.\n"
    "  --echo      answer every request with its own data, as the server sent it\n"
    "  --exec CMD  run CMD (with sh -c) per request: the request data (JSON text)\n"
    "              on stdin, SYRPC_TYPE in its environment; its stdout, which\n"
    "              must be JSON, is the result, as is.  If CMD fails, the result\n"
    "              is {\"error\": \"command failed\", ...}; if its output is not\n"
    "              JSON, the request is failed with the server's reason (its\n"
    "              caller exits 5).\n"
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

static char *
echo_handler(const syrpc_request *req, void *arg)
{
    (void) arg;
    return strdup(syrpc_request_data_text(req));
}

/* {"error": "command failed", KEY: value} as JSON text, malloc'd. */
static char *
command_failed(const char *key, json_t *value)
{
    json_t *obj = json_pack("{s:s, s:o}", "error", "command failed", key, value);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return text;
}

/*
 * Run CMD with the request's JSON text on stdin; its stdout, as is, is the
 * result (the server refuses it if it is not JSON, and the serve loop then
 * fails the request with the server's reason).
 */
static char *
exec_handler(const syrpc_request *req, void *arg)
{
    const char *cmd = arg, *data = syrpc_request_data_text(req);
    FILE *in = tmpfile();
    int out[2];
    pid_t pid;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int status;

    if (in == NULL || fputs(data, in) == EOF || fflush(in) != 0 ||
        fseek(in, 0, SEEK_SET) != 0 || pipe(out) != 0) {
        if (in)
            fclose(in);
        return command_failed("reason", json_string(strerror(errno)));
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(fileno(in), 0);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        setenv("SYRPC_TYPE", syrpc_request_type(req), 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    close(out[1]);
    fclose(in);
    for (;;) {
        ssize_t n;

        if (len + 4096 > cap) {
            char *more = realloc(buf, cap = cap * 2 + 4096);

            if (more == NULL)
                break;
            buf = more;
        }
        n = read(out[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += n;
    }
    close(out[0]);
    if (buf)
        buf[len] = '\0';
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || buf == NULL) {
        free(buf);
        return command_failed("status", json_integer(pid < 0 || buf == NULL ? -1 : WIFEXITED(status)
                                                     ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
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
    if (strcmp(argv[i], "serve") == 0)
        return cmd_serve(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "stats") == 0)
        return cmd_stats(conninfo, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "metrics") == 0)
        return cmd_metrics(conninfo, argc - i - 1, argv + i + 1);
    return usage_error(usage_main, "unknown command");
}
