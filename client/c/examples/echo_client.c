/*
 * echo_client.c: the C counterpart of the original SyRPC docs' echo client.
 *
 *   echo_client [APP] [--count N]     (connection from PGHOST, PGDATABASE, ...)
 *
 * Puts an "echo" request, waits for the result and prints it.  With
 * --count N it does N round trips and prints how fast they went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <syrpc.h>

static double
seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    const char *app = (argc > 1 && argv[1][0] != '-') ? argv[1] : "syrpc";
    long count = 0;
    syrpc_conn *rpc_client;
    json_t *data, *result;
    char result_id[SYRPC_ID_SIZE];
    char *text;
    double t0;

    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[i + 1]);
    rpc_client = syrpc_connect("", app);
    if (rpc_client == NULL || syrpc_status_of(rpc_client) != SYRPC_OK) {
        fprintf(stderr, "echo_client: %s\n", rpc_client ? syrpc_error_message(rpc_client) : "out of memory");
        syrpc_finish(rpc_client);
        return 1;
    }

    /* type_ = 'echo'; data = [{'foo': 'bar'}, {'baz': 9001}] */
    data = json_pack("[{s:s}, {s:i}]", "foo", "bar", "baz", 9001);
    if (count == 0) {
        if (syrpc_put_request(rpc_client, "echo", data, result_id) != SYRPC_OK ||
            syrpc_get_result(rpc_client, result_id, 5000, &result) != SYRPC_OK) {
            fprintf(stderr, "echo_client: %s: %s\n", syrpc_status_name(syrpc_status_of(rpc_client)),
                    syrpc_error_message(rpc_client));
            json_decref(data);
            syrpc_finish(rpc_client);
            return 1;
        }
        text = json_dumps(result, 0);
        printf("echo_client: put_request -> %s\necho_client: get_result  -> %s\n", result_id, text);
        free(text);
        json_decref(result);
    } else {
        long done = 0;

        t0 = seconds();
        for (; done < count; done++) {
            if (syrpc_call(rpc_client, "echo", data, 5000, &result) != SYRPC_OK) {
                fprintf(stderr, "echo_client: call %ld: %s\n", done, syrpc_error_message(rpc_client));
                break;
            }
            json_decref(result);
        }
        t0 = seconds() - t0;
        if (done < count) {
            json_decref(data);
            syrpc_finish(rpc_client);
            return 1;
        }
        printf("echo_client: %ld round trips in %.2f s: %.0f RPC/s, %.3f ms each\n",
               count, t0, count / t0, t0 * 1000 / count);
    }
    json_decref(data);
    syrpc_finish(rpc_client);
    return 0;
}
