"""What Client and Server share: settings, the connection, closing."""

from . import _proto as P
from . import _sync


class RPCBase(object):
    """A connection to PostgreSQL for one app.  Not thread-safe: use one
    object per thread (a second thread using it at the same time gets
    UsageError).

    :type  settings: dict
    :param settings: Dictionary holding settings:

    - app_name     (mandatory) Every server with the same app name must
                               support the same request types
    - dsn          (optional) libpq conninfo or URI ("host=/tmp dbname=app",
                              "postgresql://..."); missing: amq_host,
                              amq_user and amq_password are host, user and
                              password, and the rest comes from the PG*
                              environment (PGHOST, PGDATABASE, ...)
    - amq_msg_ttl  (optional) seconds an unread result is kept (the app's
                              result_ttl; default 10)
    - amq_ttl      (optional) seconds a request may wait to be answered
                              (the app's request_ttl; default 3 hours)
    - lease_time, max_attempts (optional) the app's other settings
    - timeout      (optional) default timeout of the waiting calls, in
                              seconds (default None: wait without limit)
    - prepared     (optional) True: prepare each statement once per
                              connection and run it by name, which saves
                              the server parsing it at every call (default
                              False; not behind pgbouncer before 1.21 in
                              transaction pooling mode)

    The app settings given are applied with syrpc_configure when the app
    does not have them yet (only the extension's owner may: for any other
    role a difference is logged as a warning).  Other keys are ignored.
    """

    def __init__(self, settings):
        self._config = P.Config(settings)
        self.app_name = self._config.app
        self.timeout = self._config.timeout
        self._link = _sync.Link(self._config)
        try:
            self._link.connect()
            if self._config.app_settings:
                wanted = dict(self._config.app_settings)
                self._link.run(lambda ctx: P.op_configure(ctx, wanted))
        except BaseException:
            self._link.close()
            raise

    def _timeout(self, timeout):
        return self.timeout if timeout is None else P.check_timeout(timeout)

    def cancel(self):
        """Cancel the call running now (from another thread): it raises
        Cancelled.  Safe to call from any thread or a signal handler."""
        self._link.cancel()

    def close(self):
        """Close the connection; the object cannot be used afterwards."""
        self._link.close()

    @property
    def closed(self):
        return self._link.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        link = getattr(self, "_link", None)
        if link is not None:
            link.close()
