/*
 * syrpc_int.h: the handle's insides, shared by the library's source files
 * (syrpc.c: connection, errors and the four calls; serve.c: the serve loop).
 * Not installed.
 */
#ifndef SYRPC_INT_H
#define SYRPC_INT_H

#include <libpq-fe.h>

#include "syrpc.h"

#define SYRPC_MSG_MAX 1024

typedef struct syrpc_route {
    char type[SYRPC_NAME_MAX + 1];
    syrpc_handler handler;
    void *arg;
} syrpc_route;

struct syrpc_conn {
    PGconn *pg;
    char *conninfo;
    char app[SYRPC_NAME_MAX + 1];
    syrpc_status status;
    char message[SYRPC_MSG_MAX];
    char sqlstate[6];
    char detail[SYRPC_MSG_MAX];
    char hint[SYRPC_MSG_MAX];
    volatile sig_atomic_t *interrupt;
    int no_combined_call;      /* the server's extension predates syrpc_put_result_get_request */
    int no_procedures;         /* ... or the waiting procedures: wait with SELECT */
    int no_call_procedure;     /* ... or syrpc_call (1.2): put, then get */
    int no_answer_wait;        /* ... or syrpc_put_result_wait_request (1.2) */
    syrpc_route *routes;       /* handlers by type, for syrpc_serve */
    int nroutes;
    syrpc_route fallback;      /* handler for any other type, if set */
};

/* Set the handle's status and message (printf-style); returns status. */
syrpc_status syrpc__fail(syrpc_conn *c, syrpc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
syrpc_status syrpc__ok(syrpc_conn *c);
int syrpc__interrupted(const syrpc_conn *c);
/* The serve loop's answer-and-wait (syrpc.c). */
syrpc_status syrpc__put_result_wait_request(syrpc_conn *c, const char *result_id,
                                            const json_t *data, syrpc_request *next);

#endif /* SYRPC_INT_H */
