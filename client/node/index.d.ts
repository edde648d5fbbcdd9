// TypeScript declarations of syrpc, the Node.js client of syrpc (RPC over PostgreSQL).

import type { Pool, PoolConfig } from 'pg';

/** Any JSON value; bigint is sent with all its digits, RawJSON as it is. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };
export type Sendable = JSONValue | bigint | RawJSON | Sendable[] | { [key: string]: Sendable | undefined }
  | { toJSON(key?: string): unknown };

/** Settings of Client and Server; any other key is a pg.Pool option (host, port, user, max, ...). */
export interface Settings extends PoolConfig {
  /** The app: 1 to 63 bytes of letters, digits, "_", "." and "-". */
  app_name: string;
  /** A pg.Pool of your own; close() leaves it open. */
  pool?: Pool;
  /** A connection string (for a pool of its own). */
  dsn?: string;
  /** The default timeout (ms) of the waiting calls; null (the default): no limit. */
  timeout?: number | null;
  /** Waits in the server last at most this long at a time (default and maximum 10000). */
  waitSliceMs?: number;
  /**
   * Prepare each statement once per connection and run it by name: the server parses it once
   * (10-20% more RPC/s). Default false; leave it off behind pgbouncer before 1.21 (or without
   * max_prepared_statements) in transaction pooling mode.
   */
  prepared?: boolean;
  /** The original's AMQP settings are accepted and ignored. */
  [amq: `amq_${string}`]: unknown;
}

export interface WaitOptions {
  /** Milliseconds; null or Infinity: no limit; undefined: the settings' timeout. */
  timeoutMs?: number | null;
  /** Hand back data as the server's JSON text (every digit of every number kept). */
  raw?: boolean;
  /** Cancels the wait (CancelledError), unless it completed all the same. */
  signal?: AbortSignal;
}
export interface RawWaitOptions extends WaitOptions { raw: true }

export interface Result<T = JSONValue> { result_id: string; data: T }
export interface Request<T = JSONValue> {
  result_id: string;
  type: string;
  data: T;
  /** Extension 1.7: the delivery this is, 1 on the first. */
  attempts?: number;
  /** Extension 1.7: when the request expires (its deadline or request_ttl, whichever is earlier); null: never. */
  deadline?: Date | null;
}

export interface PutRequestOptions {
  /** Extension 1.7: no worker gets the request at or after this time; its caller gets RequestExpiredError. null: none. */
  deadline?: Date | null;
}

/** JSON text sent as it is, also inside other data. */
export class RawJSON {
  constructor(text: string);
  readonly text: string;
}
export function rawJSON(text: string): RawJSON;

/** The longest single wait inside the server, in ms (10000). */
export const WAIT_SLICE_MS: number;

declare class Base {
  constructor(settings: Settings);
  readonly app_name: string;
  readonly pool: Pool;
  timeout: number | null;
  /** Look up the extension (optional: every call does it when needed). */
  init(): Promise<void>;
  /** End the pool if it is the client's own. */
  close(): Promise<void>;
}

export class Client extends Base {
  /** Queue a request; resolves with its result_id. */
  putRequest(type: string, data: Sendable, options?: PutRequestOptions): Promise<string>;
  /** Extension 1.7: cancel a request; true if this call cancelled it, false if it had already ended. */
  cancel(resultId: string): Promise<boolean>;
  /** Wait for the result of resultId and take it. */
  getResult(resultId: string, timeoutMs: number | null | undefined, options: RawWaitOptions): Promise<Result<string>>;
  getResult(resultId: string, options: RawWaitOptions): Promise<Result<string>>;
  getResult<T = JSONValue>(resultId: string, timeoutMs?: number | null, options?: WaitOptions): Promise<Result<T>>;
  getResult<T = JSONValue>(resultId: string, options: WaitOptions): Promise<Result<T>>;
  /** putRequest and getResult in one round trip; resolves with the result's data. */
  call(type: string, data: Sendable, options: RawWaitOptions): Promise<string>;
  call<T = JSONValue>(type: string, data: Sendable, options?: WaitOptions | number | null): Promise<T>;
}

export interface HandlerRequest {
  type: string;
  result_id: string;
  /** Extension 1.7: the delivery this is, 1 on the first. */
  attempts?: number;
  /** Extension 1.7: when the request expires; null: never. */
  deadline?: Date | null;
  /** Extension 1.7: the lease of this request now ends leaseMs from now; resolves with that time. */
  extendLease(leaseMs: number): Promise<Date>;
  /** Extension 1.7: whether its caller cancelled this request. */
  isCancelled(): Promise<boolean>;
}
export type Handler = (data: any, request: HandlerRequest) => Sendable | void | Promise<Sendable | void>;

export interface ServeOptions {
  /** Serve loops at once (default 1); the pool needs as many clients. */
  concurrency?: number;
  /** Handlers get the request data as the server's JSON text. */
  raw?: boolean;
  /** Told of handler errors and lost connections (request is null for the latter). */
  onError?: (err: unknown, request: Request<unknown> | null) => void;
}

export class Server extends Base {
  /** Wait for a request and claim it (a lease). */
  getRequest(timeoutMs: number | null | undefined, options: RawWaitOptions): Promise<Request<string>>;
  getRequest(options: RawWaitOptions): Promise<Request<string>>;
  getRequest<T = JSONValue>(timeoutMs?: number | null, options?: WaitOptions): Promise<Request<T>>;
  getRequest<T = JSONValue>(options: WaitOptions): Promise<Request<T>>;
  /** Answer a claimed request. */
  putResult(resultId: string, data: Sendable): Promise<void>;
  /** Give up a claimed request: its caller gets RequestFailedError with the reason (1 to 1024 bytes). */
  failRequest(resultId: string, reason: string): Promise<void>;
  /** Extension 1.7: answer a claimed request with an error: its caller gets RemoteError (message: 1 to 1024 bytes). */
  putError(resultId: string, message: string, detail?: Sendable): Promise<void>;
  /** Extension 1.7: whether the request was cancelled by its caller. */
  isCancelled(resultId: string): Promise<boolean>;
  /** Extension 1.7: the lease of a claimed request now ends leaseMs from now; resolves with that time. */
  extendLease(resultId: string, leaseMs: number, attempt?: number | null): Promise<Date>;
  /** Extension 1.7: hand a claimed request back, claimable again after delayMs (default 0); the attempt is not counted. */
  release(resultId: string, delayMs?: number, attempt?: number | null): Promise<void>;
  /** Serve until close(); "*" handles every type without a handler of its own. */
  serve(handlers: { [type: string]: Handler }, options?: ServeOptions): Promise<void>;
  /** Stop serving gracefully, then end the pool if it is the server's own. */
  close(): Promise<void>;
}

export class SyrpcError extends Error {
  /** The server's SQLSTATE, or null. */
  readonly sqlstate: string | null;
  /** The same, as node-postgres names it. */
  readonly code: string | null;
  readonly detail: string | null;
  readonly hint: string | null;
  /** The result_id the error is about, when there is one (a call that timed out: wait on with getResult). */
  readonly resultId: string | null;
}
export class TimeoutError extends SyrpcError {}
export class BadInputError extends SyrpcError {}
export class ResultTakenError extends BadInputError {}
export class NotInFlightError extends BadInputError {}
export class WrongAppError extends BadInputError {}
export class UnknownResultError extends BadInputError {}
export class InexactNumberError extends BadInputError {
  /** The server's JSON text, unchanged. */
  readonly text: string | null;
  /** The number that a JavaScript number cannot hold. */
  readonly number: string | null;
  /** getRequest: the claimed request, with its data as text. */
  readonly request: { result_id: string; type: string; text: string } | null;
}
export class RequestFailedError extends SyrpcError {}
export class RequestExpiredError extends RequestFailedError {}
/** SY006: the worker answered with an error (putError); the message is the worker's. */
export class RemoteError extends RequestFailedError {
  /** A handler may throw one: serve sends its message and detail (detailText: JSON text, sent as it is). */
  constructor(message: string, props?: { detail?: Sendable; detailText?: string });
  /** The worker's detail as a JavaScript value; null when none (or a number in it a double cannot hold: see detailText). */
  readonly detail: any;
  /** The detail's JSON text as the server sent it; null when none. */
  readonly detailText: string | null;
}
export class PermissionError extends SyrpcError {}
export class ReadOnlyError extends SyrpcError {}
export class CancelledError extends SyrpcError {}
/** SY007: the request was cancelled (Client.cancel); no result will come. */
export class RequestCancelledError extends CancelledError {}
export class ConnectionError extends SyrpcError {}
export class ServerError extends SyrpcError {}
