'use strict';
/*
 * The worker's side: get a request (a lease), put its result or an
 * error, or give it up; extend its lease, hand it back, ask whether it
 * was cancelled (extension 1.7); and serve(), the loop that dispatches
 * requests to handlers by type, as libsyrpc's syrpc_serve
 * (client/c/serve.c).
 *
 * From extension 1.7 requests are claimed with CALL syrpc_wait_requests
 * (and answered with CALL syrpc_put_results_wait_requests), one at a
 * time, for their attempts and deadline; before, with the single-request
 * procedures.
 */
const { Base, checkResultId, checkName, durationSeconds, waitArgs, seconds } = require('./base');
const { encode, decode, objectsOf, rawJSON, timestampOf } = require('./json');
const errors = require('./errors');

const {
  BadInputError, CancelledError, ConnectionError, InexactNumberError, NotInFlightError, RemoteError,
  RequestCancelledError,
} = errors;

/* The extension version (major * 100 + minor) of RPC semantics: putError, attempts, deadline, ... */
const V17 = 107;
const REASON_MAX = 1024;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 5000;

/* s cut to at most max bytes of UTF-8, at a character boundary. */
function cutBytes(s, max) {
  if (Buffer.byteLength(s) <= max)
    return s;
  let out = s.slice(0, max);
  while (Buffer.byteLength(out) > max)
    out = out.slice(0, -1);
  if (/[\uD800-\uDBFF]$/.test(out))
    out = out.slice(0, -1);
  return out;
}

/* A message or reason for the server: no NUL (text cannot hold it), at most 1024 bytes. */
function reasonOf(prefix, text) {
  return cutBytes(`${prefix}${text}`.replace(/\u0000/g, ''), REASON_MAX);
}

/*
 * What putError sends for a handler's error e: its message (or, when
 * empty, its name) and {exception: its name} as the detail; a RemoteError
 * (made by the handler, or one it got from a call of its own) is sent as
 * it is: its message and detail.
 */
function remoteErrorOf(e) {
  if (e instanceof RemoteError)
    return {
      message: reasonOf('', e.message) || 'remote error',
      detail: e.detailText !== null ? rawJSON(e.detailText) : null,
    };
  const isObject = e !== null && typeof e === 'object';
  const name = isObject && typeof e.name === 'string' && e.name ? e.name : typeof e;
  const text = isObject && typeof e.message === 'string' ? e.message : String(e);
  const message = reasonOf('', text) || reasonOf('', name) || 'handler failed';
  return { message, detail: { exception: name.replace(/\u0000/g, '') } };
}

/* The requests of a batch's jsonb text ([{type, result_id, data, attempts, deadline}, ...]) as rows, data as text. */
function rowsOfBatch(text) {
  return objectsOf(text).map((o) => {
    const row = { type: JSON.parse(o.type), result_id: JSON.parse(o.result_id), data: o.data };
    if (o.attempts !== undefined)
      row.attempts = Number(JSON.parse(o.attempts));
    if (o.deadline !== undefined) {
      const d = JSON.parse(o.deadline);
      row.deadline = typeof d === 'string' ? timestampOf(d) : null;
    }
    return row;
  });
}

/* Sleep ms, or less if signal fires. */
function nap(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted)
      return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

class Server extends Base {
  constructor(settings) {
    super(settings);
    this._serving = null;
  }

  /*
   * The request of a row (type, result_id, data as text; attempts and
   * deadline from 1.7); InexactNumberError if raw is off and data would change.
   */
  _requestOf(row, raw) {
    const req = { result_id: row.result_id, type: row.type, data: row.data };
    if (row.attempts !== undefined)
      req.attempts = row.attempts;
    if (row.deadline !== undefined)
      req.deadline = row.deadline;
    if (!raw)
      req.data = decode(row.data, 'request data',
        { resultId: row.result_id, request: { result_id: row.result_id, type: row.type, text: row.data } });
    return req;
  }

  /*
   * Wait up to timeoutMs (null: no limit; default: the settings' timeout)
   * for a request and claim it: resolves with {result_id, type, data},
   * and from extension 1.7 attempts (1 on the first delivery) and
   * deadline (a Date: when it expires; null if never).  The claim is a
   * lease: answer it with putResult or putError (or give it up with
   * failRequest, hand it back with release, or extendLease) before the
   * app's lease_time, else it is handed out again.
   * options: raw (data as the server's JSON text), signal.  Data that a
   * JavaScript value cannot hold exactly: InexactNumberError, whose
   * `request` has the result_id, type and text; the request is claimed.
   */
  async getRequest(timeoutMs, options) {
    const o = waitArgs(timeoutMs, options);
    const timeout = this._timeoutOf(o.timeoutMs);
    const { schema, version } = await this._ext();
    if (version >= V17) {
      const batch = await this._waitSliced(
        `CALL ${schema}.syrpc_wait_requests($1, 1, $2::pg_catalog.float8, NULL)`,
        [this.app_name], timeout, o.signal || null,
        (rows) => {
          const got = rows[0] && rows[0].requests != null ? rowsOfBatch(rows[0].requests) : [];
          return got.length > 0 ? got[0] : undefined;
        },
        `no request within ${timeout} ms`);
      return this._requestOf(batch, o.raw);
    }
    const row = await this._waitSliced(
      `CALL ${schema}.syrpc_wait_request($1, $2::pg_catalog.float8)`,
      [this.app_name], timeout, o.signal || null,
      (rows) => (rows[0] && rows[0].result_id != null ? rows[0] : undefined),
      `no request within ${timeout} ms`);
    return this._requestOf(row, o.raw);
  }

  async _putResultText(resultId, text) {
    const { schema } = await this._ext();
    await this._query(`SELECT ${schema}.syrpc_put_result($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)`,
      [this.app_name, resultId, text], {});
  }

  /* Answer a claimed request; wakes its caller. */
  async putResult(resultId, data) {
    checkResultId(resultId);
    await this._putResultText(resultId, encode(data, 'result'));
  }

  /*
   * Give up a claimed request (extension 1.3): its caller gets
   * RequestFailedError (SY001) with "request ID failed: REASON", and no
   * worker gets it again.  reason: 1 to 1024 bytes.
   */
  async failRequest(resultId, reason) {
    checkResultId(resultId);
    if (typeof reason !== 'string' || reason.length === 0 || Buffer.byteLength(reason) > REASON_MAX)
      throw new BadInputError(`reason must be a string of 1 to ${REASON_MAX} bytes`);
    const { schema } = await this._extAtLeast(103, 'failRequest');
    await this._query(`SELECT ${schema}.syrpc_fail_request($1, $2::pg_catalog.uuid, $3)`,
      [this.app_name, resultId, reason], {});
  }

  /*
   * Answer a claimed request with an error instead of data (extension
   * 1.7): its caller's getResult and call reject with RemoteError, whose
   * message is message (1 to 1024 bytes) and detail is detail (any JSON
   * data; undefined or null: none).  A cancelled request's error is
   * accepted and dropped.
   */
  async putError(resultId, message, detail) {
    checkResultId(resultId);
    if (typeof message !== 'string' || message.length === 0 || Buffer.byteLength(message) > REASON_MAX)
      throw new BadInputError(`message must be a string of 1 to ${REASON_MAX} bytes`);
    const text = detail === undefined || detail === null ? null : encode(detail, 'detail');
    const { schema } = await this._extAtLeast(V17, 'putError');
    await this._query(`SELECT ${schema}.syrpc_put_error($1, $2::pg_catalog.uuid, $3, $4::pg_catalog.jsonb)`,
      [this.app_name, resultId, message, text], {});
  }

  /* Whether the request was cancelled by its caller (extension 1.7); false while queued, in flight or answered. */
  async isCancelled(resultId) {
    checkResultId(resultId);
    const { schema } = await this._extAtLeast(V17, 'isCancelled');
    const rows = await this._query(`SELECT ${schema}.syrpc_is_cancelled($1, $2::pg_catalog.uuid) AS cancelled`,
      [this.app_name, resultId], {});
    return rows[0].cancelled === true;
  }

  /*
   * Extend the lease of a claimed request (extension 1.7): it now ends
   * leaseMs from now (> 0, at most 100 years); resolves with that time (a
   * Date).  NotInFlightError (SY004) when the lease was lost (ran out,
   * answered, ...), RequestCancelledError (SY007) when it was cancelled.
   * attempt: the attempts the request came with, if known, so that a later
   * claim's lease (after this one ran out) is refused, not extended.
   */
  async extendLease(resultId, leaseMs, attempt = null) {
    checkResultId(resultId);
    const secs = durationSeconds(leaseMs, 'leaseMs');
    const { schema } = await this._extAtLeast(V17, 'extendLease');
    const rows = await this._query(
      `SELECT ${schema}.syrpc_extend_lease($1, $2::pg_catalog.uuid, $3::pg_catalog.float8, $4::pg_catalog.int4) AS lease_end`,
      [this.app_name, resultId, String(secs), attempt ? String(attempt) : null], {});
    return rows[0].lease_end;
  }

  /*
   * Hand a claimed request back (extension 1.7): it can be claimed again
   * after delayMs (default 0: at once), and this attempt does not count
   * toward max_attempts.  A cancelled request: accepted, nothing done.
   * attempt: as for extendLease.
   */
  async release(resultId, delayMs = 0, attempt = null) {
    checkResultId(resultId);
    const secs = durationSeconds(delayMs, 'delayMs', true);
    const { schema } = await this._extAtLeast(V17, 'release');
    await this._query(
      `SELECT ${schema}.syrpc_release($1, $2::pg_catalog.uuid, pg_catalog.make_interval(secs => $3::pg_catalog.float8), $4::pg_catalog.int4)`,
      [this.app_name, resultId, String(secs), attempt ? String(attempt) : null], {});
  }

  /* Answer and claim the next request without waiting (one statement); the next request's row or null. */
  async _putResultGetRequest(resultId, text) {
    const { schema, version } = await this._ext();
    if (version >= V17) {
      const rows = await this._query(
        `CALL ${schema}.syrpc_put_results_wait_requests($1, ARRAY[$2::pg_catalog.uuid], ARRAY[$3::pg_catalog.jsonb], 1, 0, NULL)`,
        [this.app_name, resultId, text], {});
      const got = rows[0] && rows[0].requests != null ? rowsOfBatch(rows[0].requests) : [];
      return got.length > 0 ? got[0] : null;
    }
    const rows = await this._query(
      `SELECT type, result_id, data FROM ${schema}.syrpc_put_result_get_request($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)`,
      [this.app_name, resultId, text], {});
    return rows.length > 0 ? rows[0] : null;
  }

  /* One slice of waiting for a request: its row or null; signal cancels it. */
  async _waitOne(signal) {
    const { schema, version } = await this._ext();
    try {
      if (version >= V17) {
        const rows = await this._query(`CALL ${schema}.syrpc_wait_requests($1, 1, $2::pg_catalog.float8, NULL)`,
          [this.app_name, seconds(this._sliceMs)], { signal, answerMs: this._sliceMs });
        const got = rows[0] && rows[0].requests != null ? rowsOfBatch(rows[0].requests) : [];
        return got.length > 0 ? got[0] : null;
      }
      const rows = await this._query(`CALL ${schema}.syrpc_wait_request($1, $2::pg_catalog.float8)`,
        [this.app_name, seconds(this._sliceMs)], { signal, answerMs: this._sliceMs });
      return rows[0] && rows[0].result_id != null ? rows[0] : null;
    } catch (e) {
      if (errors.isStatementTimeout(e))
        return null;
      throw e;
    }
  }

  /* Give up row with reason; on extension 1.2 (no failRequest) answer it with an error object. */
  async _giveUp(row, reason) {
    const { version } = await this._ext();
    if (version >= 103)
      return this.failRequest(row.result_id, reason);
    return this._putResultText(row.result_id, encode({ error: 'request failed', type: row.type, reason }));
  }

  /*
   * What to do with the request of row: {answer: JSON text}, {reason}
   * to give it up with, or (a handler's error, from 1.7) {error:
   * {message, detail}} to answer with putError.  The handler gets the data
   * and the request: {type, result_id, attempts, deadline, extendLease(ms),
   * isCancelled()}.
   */
  async _dispatch(row, handlers, opts) {
    const handler = Object.prototype.hasOwnProperty.call(handlers, row.type) ? handlers[row.type]
      : Object.prototype.hasOwnProperty.call(handlers, '*') ? handlers['*'] : null;
    if (handler === null)
      return { answer: encode({ error: 'unknown type', type: row.type }) };
    let req;
    try {
      req = this._requestOf(row, opts.raw);
    } catch (e) {
      if (!(e instanceof InexactNumberError))
        throw e;
      return { reason: reasonOf('request data cannot be represented exactly by the Node.js client: ', e.message) };
    }
    const id = req.result_id;
    const context = {
      type: req.type,
      result_id: id,
      extendLease: (leaseMs) => this.extendLease(id, leaseMs, req.attempts || null),
      isCancelled: () => this.isCancelled(id),
    };
    if (req.attempts !== undefined)
      context.attempts = req.attempts;
    if (req.deadline !== undefined)
      context.deadline = req.deadline;
    let result;
    try {
      result = await handler(req.data, context);
    } catch (e) {
      opts.onError(e, req);
      const { version } = await this._ext();
      if (version >= V17)
        return { error: remoteErrorOf(e) };
      return { reason: reasonOf('handler failed: ', (e && e.message) || String(e)) };
    }
    try {
      return { answer: encode(result === undefined ? null : result, 'result') };
    } catch (e) {
      opts.onError(e, req);
      return { reason: reasonOf("the handler's result cannot be sent as JSON: ", e.message) };
    }
  }

  /* One serve loop: wait, dispatch, answer (and claim the next), until state.closing. */
  async _loop(handlers, state, opts) {
    let row = null;
    let backoff = BACKOFF_MIN_MS;
    while (row !== null || !state.closing) {
      if (row === null) {
        try {
          row = await this._waitOne(state.ctl.signal);
          backoff = BACKOFF_MIN_MS;
        } catch (e) {
          if (state.closing && e instanceof CancelledError)
            break;
          if (e instanceof CancelledError) {
            /* pg_cancel_backend on the wait, which held no request: serve on */
            opts.onError(e, null);
            continue;
          }
          if (!(e instanceof ConnectionError))
            throw e;
          opts.onError(e, null);
          await nap(backoff, state.ctl.signal);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
          continue;
        }
        if (row === null)
          continue;
      }
      const { answer, reason, error } = await this._dispatch(row, handlers, opts);
      let next = null;
      try {
        if (reason !== undefined)
          await this._giveUp(row, reason);
        else if (error !== undefined)
          await this.putError(row.result_id, error.message, error.detail);
        else if (state.closing)
          await this._putResultText(row.result_id, answer);
        else
          next = await this._putResultGetRequest(row.result_id, answer);
      } catch (e) {
        if (reason === undefined && e instanceof BadInputError && e.sqlstate
            && (e.sqlstate.startsWith('22') || e.sqlstate === '54000')) {
          /* the server refused the answer or error (too large, say): tell the caller why */
          const what = error !== undefined ? "the handler's error" : "the handler's result";
          await this._giveUp(row, reasonOf(`the server refused ${what}: `, e.message))
            .catch((e2) => opts.onError(e2, row));
        } else if (e instanceof NotInFlightError || e instanceof RequestCancelledError) {
          /* our lease ran out and another worker answered, or it expired, or was cancelled */
        } else if (e instanceof ConnectionError) {
          /* the request comes back by its lease, to us or another worker */
          opts.onError(e, row);
          await nap(backoff, state.ctl.signal);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        } else {
          throw e;
        }
      }
      state.served++;
      row = next;
    }
  }

  /*
   * Serve requests: handlers maps a type to an async function (data,
   * {type, result_id}) whose value is the result ("*": every type without
   * its own).  An unknown type is answered {"error": "unknown type",
   * "type": TYPE}.  A handler that throws answers with putError (from
   * extension 1.7: message, {exception: name}; a RemoteError it throws:
   * that message and detail), so its caller gets RemoteError; before 1.7 it gives the request up (failRequest) with the
   * reason "handler failed: MESSAGE", so its caller gets
   * RequestFailedError, as does a result that cannot be sent.  The handler's
   * second argument has the request's type, result_id, from 1.7 attempts and
   * deadline, and extendLease(ms) and isCancelled() of its request.  options: concurrency (loops at once, default 1;
   * the pool needs as many clients), raw (handlers get the JSON text),
   * onError(err, request) (told of handler errors, lost connections and
   * cancelled waits, which it serves on after).
   * Resolves when close() has stopped it; rejects on an error it cannot
   * get past (no privilege, extension missing, ...).
   */
  serve(handlers, options = {}) {
    try {
      if (handlers === null || typeof handlers !== 'object')
        throw new BadInputError('serve needs an object of handlers, {type: async (data) => result}');
      for (const [type, fn] of Object.entries(handlers)) {
        if (type !== '*')
          checkName('type', type);
        if (typeof fn !== 'function')
          throw new BadInputError(`the handler of ${type} is not a function`);
      }
      if (this._serving)
        throw new BadInputError('this Server is already serving');
      if (this._closed)
        throw new BadInputError('this Server is closed');
      if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1))
        throw new BadInputError('concurrency must be a whole number, 1 or more');
    } catch (e) {
      return Promise.reject(e);
    }
    const concurrency = options.concurrency === undefined ? 1 : options.concurrency;
    const opts = { raw: !!options.raw, onError: typeof options.onError === 'function' ? options.onError : () => {} };
    const state = { closing: false, ctl: new AbortController(), served: 0 };
    let failure = null;
    const loops = [];
    for (let i = 0; i < concurrency; i++)
      loops.push(this._loop(handlers, state, opts).catch((e) => {
        if (failure === null)
          failure = e;
        state.closing = true;
        state.ctl.abort();
      }));
    this._state = state;
    this._serving = Promise.all(loops).then(() => {
      this._serving = null;
      if (failure !== null)
        throw failure;
    });
    return this._serving;
  }

  /*
   * Stop serving gracefully: waits that hold no request are cancelled,
   * requests being handled are answered; then the pool is ended if it is
   * ours.  Resolves when all that is done.
   */
  async close() {
    if (this._serving) {
      this._state.closing = true;
      this._state.ctl.abort();
      await this._serving.catch(() => {});
    }
    await super.close();
  }
}

module.exports = { Server };
