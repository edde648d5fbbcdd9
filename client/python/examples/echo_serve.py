"""The modern API: an echo worker that serves until SIGINT or SIGTERM.

    SYRPC_DSN='dbname=app' /usr/bin/python3 echo_serve.py [APP]

and from another shell:

    /usr/bin/python3 -c "import syrpc; print(syrpc.Client({'app_name': 'syrpc'}).call('echo', [1, 2], timeout=5))"
"""
import logging
import os
import sys

import syrpc


def echo(data):
    return data


def main():
    logging.basicConfig(level=logging.INFO)
    app = sys.argv[1] if len(sys.argv) > 1 else 'syrpc'
    with syrpc.Server({'app_name': app, 'dsn': os.environ.get('SYRPC_DSN', '')}) as server:
        print("serving %s; SIGINT or SIGTERM stops" % app, flush=True)
        served = server.serve({'echo': echo})
        print("stopped after %d requests" % served, flush=True)


if __name__ == '__main__':
    main()
