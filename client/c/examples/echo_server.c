/*
 * echo_server.c: the C counterpart of the original SyRPC docs' echo server.
 *
 *   echo_server [APP]     (connection from PGHOST, PGDATABASE, ...)
 *
 * Answers every "echo" request with its own data until SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <syrpc.h>

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) { (void) sig; stop = 1; }

static json_t *
echo(const syrpc_request *req, void *arg)
{
    (void) arg;
    return json_deep_copy(syrpc_request_data(req));
}

int
main(int argc, char **argv)
{
    const char *app = argc > 1 ? argv[1] : "syrpc";
    syrpc_conn *rpc_server = syrpc_connect("", app);
    struct sigaction sa;
    syrpc_status st;

    if (rpc_server == NULL || syrpc_status_of(rpc_server) != SYRPC_OK) {
        fprintf(stderr, "echo_server: %s\n", rpc_server ? syrpc_error_message(rpc_server) : "out of memory");
        syrpc_finish(rpc_server);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    syrpc_set_interrupt_flag(rpc_server, &stop);

    syrpc_register(rpc_server, "echo", echo, NULL);
    st = syrpc_serve(rpc_server, 0);
    if (st != SYRPC_OK && st != SYRPC_INTERRUPTED)
        fprintf(stderr, "echo_server: %s\n", syrpc_error_message(rpc_server));
    syrpc_finish(rpc_server);
    return st == SYRPC_OK || st == SYRPC_INTERRUPTED ? 0 : 1;
}
