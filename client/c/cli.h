/*
 * cli.h: what the syrpc command's files share (cli.c: main, call, serve;
 * cli_stats.c: stats and metrics).
 */
#ifndef SYRPC_CLI_H
#define SYRPC_CLI_H

#include <signal.h>

#include "syrpc.h"

enum {
    EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3,
    EXIT_CONNECTION = 4, EXIT_REQUEST_FAILED = 5, EXIT_REMOTE_ERROR = 6, EXIT_CANCELLED = 7
};

/* Set by SIGINT and SIGTERM: the serve loop and --watch stop. */
extern volatile sig_atomic_t stop_flag;
void on_signal(int sig);

int exit_code_of(syrpc_status st);
int report(syrpc_conn *c);
int wants_help(int argc, char **argv);
int usage_error(const char *usage, const char *msg);
syrpc_conn *connect_or_report(const char *conninfo, const char *app, int *code);
int parse_timeout(const char *arg);
long parse_count(const char *arg);

int cmd_stats(const char *conninfo, int argc, char **argv);
int cmd_metrics(const char *conninfo, int argc, char **argv);

#endif
