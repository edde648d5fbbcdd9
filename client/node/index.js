'use strict';
/*
 * syrpc for Node.js: RPC over PostgreSQL (the syrpc extension) on
 * node-postgres, with the original syrpc-js names and Promises.
 *
 *   const syrpc = require('syrpc');
 *   const client = new syrpc.Client({ app_name: 'echo_app' });   // PGHOST, ... or dsn, or pool
 *   const data = await client.call('echo', { value: 'hello' }, { timeoutMs: 5000 });
 */
const { Client } = require('./lib/client');
const { Server } = require('./lib/server');
const { RawJSON, rawJSON } = require('./lib/json');
const { WAIT_SLICE_MS } = require('./lib/base');
const errors = require('./lib/errors');

module.exports = {
  Client,
  Server,
  RawJSON,
  rawJSON,
  WAIT_SLICE_MS,
  SyrpcError: errors.SyrpcError,
  TimeoutError: errors.TimeoutError,
  BadInputError: errors.BadInputError,
  ResultTakenError: errors.ResultTakenError,
  NotInFlightError: errors.NotInFlightError,
  WrongAppError: errors.WrongAppError,
  UnknownResultError: errors.UnknownResultError,
  InexactNumberError: errors.InexactNumberError,
  RequestFailedError: errors.RequestFailedError,
  RequestExpiredError: errors.RequestExpiredError,
  RemoteError: errors.RemoteError,
  PermissionError: errors.PermissionError,
  ReadOnlyError: errors.ReadOnlyError,
  CancelledError: errors.CancelledError,
  RequestCancelledError: errors.RequestCancelledError,
  ConnectionError: errors.ConnectionError,
  ServerError: errors.ServerError,
};
