"""The original SyRPC docs' "Example Echo Server", with a PostgreSQL dsn.

    SYRPC_DSN='dbname=app' /usr/bin/python3 echo_server.py

(SYRPC_DSN unset: the PG* environment.)  It answers one request, as the
docs' example does; echo_serve.py serves until SIGINT/SIGTERM.
"""
import os

import syrpc
import syrpc.common as cmn    # the docs' example uses cmn.lg without importing it

rpc_server = syrpc.Server({
    'app_name': 'syrpc',
    'dsn': os.environ.get('SYRPC_DSN', ''),
})
(type_, result_id, data) = rpc_server.get_request()
cmn.lg.info("Server received request: %s" % (result_id))
if type_ == 'echo':
    rpc_server.put_result(
        result_id=result_id, data=data
    )
