"""syrpc: RPC over PostgreSQL, a drop-in replacement for the original
SyRPC's Python client (syrpc-python), plus a modern API beside it.

    import syrpc
    client = syrpc.Client({'app_name': 'echo_app', 'dsn': 'dbname=app'})
    result_id = client.put_request('echo', {'value': 'hello'})
    client.get_result(result_id, timeout=5)   # {'result_id': '...', 'data': {'value': 'hello'}}
    client.call('echo', {'value': 'hello'}, timeout=5)   # {'value': 'hello'}

Blocking and thread-bound: one Client or Server per thread.  syrpc.aio
has the asyncio flavour.
"""

__version__ = "1.1.0"

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from ._proto import Request
from .client import Client
from .server import Server

__all__ = ["Client", "Server", "Request", "__version__"] + list(_errors_all)
