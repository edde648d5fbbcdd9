'use strict';
/*
 * The caller's side: put a request, get a result by its result_id (here
 * or in another process), or both in one round trip (call); cancel a
 * request (extension 1.7).
 */
const { Base, acquireDeadline, checkName, checkResultId, waitArgs, seconds } = require('./base');
const { encode, decode } = require('./json');
const errors = require('./errors');

const { BadInputError, CancelledError, TimeoutError } = errors;

/* The deadline option of putRequest as timestamptz text, or null for none. */
function deadlineOf(options) {
  if (options === undefined || options === null)
    return null;
  if (typeof options !== 'object')
    throw new BadInputError('the options of putRequest must be an object, {deadline}');
  const { deadline } = options;
  if (deadline === undefined || deadline === null)
    return null;
  if (!(deadline instanceof Date) || Number.isNaN(deadline.getTime()))
    throw new BadInputError(`deadline must be a valid Date, or null for none (got ${String(deadline)})`);
  return deadline.toISOString();
}

/* err with resultId set (when it has none yet). */
function withResultId(err, resultId) {
  if (err instanceof errors.SyrpcError && err.resultId === null)
    err.resultId = resultId;
  return err;
}

class Client extends Base {
  /*
   * Queue a request; resolves with its result_id (a string).  options:
   * deadline (a Date, extension 1.7): no worker gets the request at or
   * after it, and its caller gets RequestExpiredError (SY002) then, as
   * with the app's request_ttl (whichever is earlier); null: none.
   */
  async putRequest(type, data, options) {
    checkName('type', type);
    const deadline = deadlineOf(options);
    const text = encode(data, 'data');
    if (deadline !== null) {
      const { schema } = await this._extAtLeast(107, 'putRequest with a deadline');
      const rows = await this._query(
        `SELECT ${schema}.syrpc_put_request($1, $2, $3::pg_catalog.jsonb, $4::pg_catalog.timestamptz) AS result_id`,
        [this.app_name, type, text, deadline], {});
      return rows[0].result_id;
    }
    const { schema } = await this._ext();
    const rows = await this._query(
      `SELECT ${schema}.syrpc_put_request($1, $2, $3::pg_catalog.jsonb) AS result_id`,
      [this.app_name, type, text], {});
    return rows[0].result_id;
  }

  /*
   * Cancel a request (extension 1.7): true if this call cancelled it (a
   * queued request is withdrawn, one in flight is marked so that its
   * worker's answer is dropped), false if it had already ended (answered,
   * failed, expired, cancelled).  Its getResult then rejects with
   * RequestCancelledError (SY007).
   */
  async cancel(resultId) {
    checkResultId(resultId);
    const { schema } = await this._extAtLeast(107, 'cancel');
    try {
      const rows = await this._query(`SELECT ${schema}.syrpc_cancel($1, $2::pg_catalog.uuid) AS cancelled`,
        [this.app_name, resultId], {});
      return rows[0].cancelled === true;
    } catch (e) {
      throw withResultId(e, resultId);
    }
  }

  /*
   * Wait up to timeoutMs (null: no limit; default: the settings' timeout)
   * for the result of resultId and take it: resolves with {result_id,
   * data}, as the original.  options: raw (data as the server's JSON
   * text), signal (an AbortSignal).  Rejects with TimeoutError, or the
   * error class of the server's SQLSTATE: RemoteError when the worker
   * answered with an error (1.7; again on every later getResult),
   * RequestCancelledError when the request was cancelled (1.7).
   */
  async getResult(resultId, timeoutMs, options) {
    const o = waitArgs(timeoutMs, options);
    checkResultId(resultId);
    const timeout = this._timeoutOf(o.timeoutMs);
    const { schema } = await this._ext();
    let text;
    try {
      text = await this._waitSliced(
        `CALL ${schema}.syrpc_wait_result($1, $2::pg_catalog.uuid, $3::pg_catalog.float8)`,
        [this.app_name, resultId], timeout, o.signal || null,
        (rows) => (rows[0] && rows[0].result != null ? rows[0].result : undefined),
        `no result within ${timeout} ms`, { resultId });
    } catch (e) {
      throw withResultId(e, resultId);
    }
    return { result_id: resultId, data: o.raw ? text : decode(text, 'result', { resultId }) };
  }

  /*
   * putRequest and getResult in one: resolves with the result's data.
   * options: timeoutMs, raw, signal as for getResult.  The first slice is
   * one round trip (CALL syrpc_call); a longer wait goes on with
   * getResult.  A TimeoutError after the request was queued has its
   * resultId, to wait on with getResult.
   */
  async call(type, data, options) {
    const o = waitArgs(options === undefined ? {} : options);
    checkName('type', type);
    const text = encode(data, 'data');
    const timeout = this._timeoutOf(o.timeoutMs);
    const signal = o.signal || null;
    const start = Date.now();
    const deadline = timeout === null ? null : start + timeout;
    const { schema } = await this._ext();
    let rows;
    try {
      rows = await this._query(
        `CALL ${schema}.syrpc_call($1, $2, $3::pg_catalog.jsonb, $4::pg_catalog.float8)`, null, {
          deadline: acquireDeadline(start, deadline), until: deadline, signal, answerMs: this._sliceMs,
          values: (left) => [this.app_name, type, text,
            seconds(left === null ? this._sliceMs : Math.min(left, this._sliceMs))],
        });
    } catch (e) {
      if (e instanceof TimeoutError)
        throw new TimeoutError(`no result within ${timeout} ms (no free connection: nothing was queued)`);
      if (errors.isStatementTimeout(e))
        throw new TimeoutError(`no result within ${timeout} ms (statement_timeout ended the call; the request may be queued)`,
          { sqlstate: '57014', cause: e });
      throw e;
    }
    const { result_id: resultId, result } = rows[0];
    if (result != null)
      return o.raw ? result : decode(result, 'result', { resultId });
    if (signal && signal.aborted)
      throw new CancelledError('cancelled', { resultId, cause: signal.reason });
    const left = deadline === null ? null : deadline - Date.now();
    if (left !== null && left <= 0)
      throw new TimeoutError(`no result within ${timeout} ms`, { resultId });
    try {
      return (await this.getResult(resultId, left, { raw: o.raw, signal })).data;
    } catch (e) {
      if (e instanceof TimeoutError)
        throw new TimeoutError(`no result within ${timeout} ms`, { resultId });
      throw e;
    }
  }
}

module.exports = { Client };
