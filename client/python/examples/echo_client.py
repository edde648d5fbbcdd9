"""The original SyRPC docs' "Example Echo Client", with a PostgreSQL dsn.

    SYRPC_DSN='dbname=app' /usr/bin/python3 echo_client.py

Prints the result: {'result_id': '...', 'data': [{'foo': 'bar'}, {'baz': 9001}]}
"""
import os

import syrpc

rpc_client = syrpc.Client({
    'app_name': 'syrpc',
    'dsn': os.environ.get('SYRPC_DSN', ''),
})
type_ = 'echo'
data = [{'foo': 'bar'}, {'baz': 9001}]
result_id = rpc_client.put_request(
    type_=type_, data=data,
)
result = rpc_client.get_result(result_id=result_id)
print(result)
