"""The original SyRPC docs' echo examples, run as they are (only their
settings dict changed), and examples/, each as a subprocess."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import syrpc
from conftest import PACKAGE_DIR, subprocess_env

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EXAMPLES = os.path.join(PACKAGE_DIR, "examples")

# The two examples of the original docs (docs/source/index.rst of
# syrpc-python), character for character.
DOCS_SERVER = textwrap.dedent("""\
   import syrpc
   rpc_server =  syrpc.Server({
       'app_anme': 'syrpc',
       'amq_host': 'localhost',
   })
   (type_, result_id, data) = rpc_server.get_request()
   cmn.lg.info("Server received request: %s" % (result_id))
   if type_ == 'echo':
       rpc_server.put_result(
           result_id=result_id, data=data
       )
""")
DOCS_CLIENT = textwrap.dedent("""\
   import syrpc
   rpc_client =  syrpc.Client({
       'app_anme': 'syrpc',
       'amq_host': 'localhost',
   })
   type_ = 'echo'
   data = [{'foo': 'bar'}, {'baz': 9001}]
   result_id = rpc_client.put_request(
       type_=type_, data=data,
   )
   result = rpc_client.get_result(result_id=result_id)
""")
DOCS_SETTINGS = """{
    'app_anme': 'syrpc',
    'amq_host': 'localhost',
}"""

# Runs an example from stdin and prints its `result` as JSON.  The docs'
# server example uses cmn (the original's syrpc.common) without importing
# it: the harness gives it one, as the original's own module had.
HARNESS = """
import json, sys
import syrpc.common as cmn
ns = {"cmn": cmn, "__name__": "__main__"}
exec(compile(sys.stdin.read(), "docs-example", "exec"), ns)
print(json.dumps(ns.get("result")))
"""


def _with_settings(code, app, dsn):
    assert DOCS_SETTINGS in code
    return code.replace(DOCS_SETTINGS, repr({"app_name": app, "dsn": dsn}))


def _start(args, stdin_text=None, env=None):
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=EXAMPLES, env=env or subprocess_env())
    if stdin_text is not None:
        proc.stdin.write(stdin_text)
    proc.stdin.close()
    proc.stdin = None
    return proc


def _finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("%s did not end: %s" % (proc.args, err))
    return proc.returncode, out, err


def test_docs_echo_examples_run_as_they_are(app, dsn):
    server = _start([PYTHON, "-c", HARNESS], _with_settings(DOCS_SERVER, app, dsn))
    client = _start([PYTHON, "-c", HARNESS], _with_settings(DOCS_CLIENT, app, dsn))
    rc, out, err = _finish(client)
    assert rc == 0, err
    result = json.loads(out.splitlines()[-1])
    assert result["data"] == [{"foo": "bar"}, {"baz": 9001}]
    assert set(result) == {"result_id", "data"}
    rc, out, err = _finish(server)
    assert rc == 0, err


def test_docs_settings_typo_is_a_clear_error(dsn):
    """The docs' settings as they are (app_anme): a clear error, not a KeyError."""
    code = DOCS_CLIENT.replace("'amq_host': 'localhost',", "'dsn': %r," % dsn)
    rc, out, err = _finish(_start([PYTHON, "-c", HARNESS], code))
    assert rc != 0
    assert "SettingsError" in err and "'app_name'" in err and "app_anme" in err


def test_examples_echo_server_and_client(database):
    env = dict(subprocess_env(), SYRPC_DSN="dbname=" + database)
    server = _start([PYTHON, "echo_server.py"], env=env)
    client = _start([PYTHON, "echo_client.py"], env=env)
    rc, out, err = _finish(client)
    assert rc == 0, err
    assert "'data': [{'foo': 'bar'}, {'baz': 9001}]" in out and "'result_id': '" in out
    rc, out, err = _finish(server)
    assert rc == 0, err


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_example_echo_serve_stops_cleanly(app, database, dsn, signo):
    env = dict(subprocess_env(), SYRPC_DSN="dbname=" + database)
    proc = subprocess.Popen([PYTHON, "echo_serve.py", app], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=EXAMPLES, env=env)
    try:
        assert proc.stdout.readline().startswith("serving")
        with syrpc.Client({"app_name": app, "dsn": dsn}) as cli:
            assert cli.call("echo", [1, 2], timeout=20) == [1, 2]
        proc.send_signal(signo)
        rc, out, err = _finish(proc, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, err
    assert "stopped after 1 requests" in out
