'use strict';
/*
 * JSON both ways, never changing a number silently.
 *
 * jsonb keeps every digit of a number; a JavaScript number is a double.
 * Going out, JSON.stringify already writes a double with the fewest digits
 * that read back as the same double, so the only values to refuse are NaN
 * and the infinities (JSON.stringify would send null); a BigInt is sent
 * with all its digits, and rawJSON(text) is sent as it is.  Coming back,
 * every number in the server's text must be exactly what JSON.parse makes
 * of it: its decimal value must equal the shortest form of the double
 * (1.10 is fine; 9007199254740993, 0.12345678901234567890123 and 1e400
 * are not).  Anything else is refused with InexactNumberError, which keeps
 * the text: ask for raw text ({raw: true}) where data may hold such numbers.
 */
const crypto = require('crypto');
const { BadInputError, InexactNumberError } = require('./errors');

/* JSON text to send as it is (inside other data, too): rawJSON(text). */
class RawJSON {
  constructor(text) {
    if (typeof text !== 'string')
      throw new BadInputError('rawJSON needs a string of JSON text');
    try {
      JSON.parse(text);
    } catch (e) {
      throw new BadInputError(`rawJSON: not JSON text: ${e.message}`);
    }
    this.text = text;
    Object.freeze(this);
  }
}

function rawJSON(text) {
  return new RawJSON(text);
}

function describeKey(key) {
  return key === '' ? 'at the top level' : `at key ${JSON.stringify(String(key))}`;
}

/*
 * The JSON text of data, for the server; BadInputError if it cannot be
 * sent exactly (NaN, Infinity, undefined at the top level, cycles).
 * what: "data" or "result", for messages.
 */
function encode(data, what = 'data') {
  if (data instanceof RawJSON)
    return data.text;
  let nonce = null;
  const spliced = [];
  let text;
  try {
    text = JSON.stringify(data, function replacer(key, value) {
      let v = value;
      if (v instanceof Number)
        v = v.valueOf();
      if (typeof v === 'number' && !Number.isFinite(v))
        throw new BadInputError(`${what} cannot be sent as JSON: ${v} (${describeKey(key)}) is not a finite number`);
      if (typeof v === 'bigint' || v instanceof RawJSON) {
        if (nonce === null)
          nonce = crypto.randomBytes(8).toString('hex');
        spliced.push(typeof v === 'bigint' ? v.toString() : v.text);
        return `\u0000syrpc:${nonce}:${spliced.length - 1}\u0000`;
      }
      return value;
    });
  } catch (e) {
    if (e instanceof BadInputError)
      throw e;
    throw new BadInputError(`${what} cannot be sent as JSON: ${e.message}`, { cause: e });
  }
  if (text === undefined)
    throw new BadInputError(`${what} cannot be sent as JSON: ${typeof data === 'undefined' ? 'undefined' : typeof data}`);
  if (nonce !== null) {
    const re = new RegExp(`"\\\\u0000syrpc:${nonce}:(\\d+)\\\\u0000"`, 'g');
    text = text.replace(re, (_, i) => spliced[Number(i)]);
  }
  return text;
}

/* A number token's decimal value as "[-]DIGITSeEXP" with no leading or trailing zeros ("0" for zero). */
function canonicalDecimal(token) {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!m)
    return null;
  let digits = (m[2] || '') + (m[3] || '');
  let exp = (m[4] ? parseInt(m[4], 10) : 0) - (m[3] || '').length;
  digits = digits.replace(/^0+/, '');
  if (digits === '')
    return '0';
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  exp += trailing;
  return `${m[1]}${digits}e${exp}`;
}

function shortToken(token) {
  return token.length <= 40 ? token : `${token.slice(0, 40)}... (${token.replace(/\D/g, '').length} digits)`;
}

/* Why token cannot be held exactly by a JavaScript number, or null if it can. */
function inexactReason(token) {
  if (/^-?\d{1,15}$/.test(token))
    return null;                        /* the common case: always exact */
  const n = Number(token);
  if (!Number.isFinite(n))
    return `number ${shortToken(token)} is beyond the range of a double`;
  const back = Object.is(n, -0) ? '0' : String(n);
  if (canonicalDecimal(back) === canonicalDecimal(token))
    return null;
  return `number ${shortToken(token)} has more precision than a double holds (it would become ${back})`;
}

/* Strings (skipped) and number tokens of JSON text. */
const TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/*
 * The value of the server's JSON text, or InexactNumberError (with the
 * text) if one of its numbers would change.  what: "result", "request
 * data", for messages; props go into the error.
 */
function decode(text, what = 'result', props = {}) {
  if (/\d/.test(text)) {
    TOKENS.lastIndex = 0;
    let m;
    while ((m = TOKENS.exec(text)) !== null) {
      if (m[0][0] === '"')
        continue;
      const why = inexactReason(m[0]);
      if (why !== null)
        throw new InexactNumberError(
          `${what} cannot be represented exactly by a JavaScript value: ${why} (ask for {raw: true} to get the JSON text)`,
          { text, number: m[0], ...props });
    }
  }
  return JSON.parse(text);
}

/* The index just past the JSON value that starts at text[i] (no whitespace before it). */
function valueEnd(text, i) {
  const c = text[i];
  if (c === '"') {
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] === '\\')
        j++;
      else if (text[j] === '"')
        return j + 1;
    }
    throw new SyntaxError('unterminated string in JSON text');
  }
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"')
        j = valueEnd(text, j) - 1;
      else if (d === '{' || d === '[')
        depth++;
      else if (d === '}' || d === ']') {
        if (--depth === 0)
          return j + 1;
      }
    }
    throw new SyntaxError('unterminated container in JSON text');
  }
  const m = /[^\s,\]}]*/y;
  m.lastIndex = i;
  m.exec(text);
  return m.lastIndex;
}

function skipSpace(text, i) {
  while (i < text.length && /\s/.test(text[i]))
    i++;
  return i;
}

/*
 * A JSON array of objects (the server's jsonb text) as an array of
 * {key: the JSON text of its value}, each value's text exactly as the
 * server wrote it (so data keeps every digit, and raw mode its text).
 */
function objectsOf(text) {
  const out = [];
  let i = skipSpace(text, 0);
  if (text[i] !== '[')
    throw new SyntaxError('expected a JSON array');
  i = skipSpace(text, i + 1);
  while (text[i] !== ']') {
    if (text[i] !== '{')
      throw new SyntaxError('expected a JSON object in the array');
    const obj = {};
    i = skipSpace(text, i + 1);
    while (text[i] !== '}') {
      const keyEnd = valueEnd(text, i);
      const key = JSON.parse(text.slice(i, keyEnd));
      i = skipSpace(text, keyEnd);
      if (text[i] !== ':')
        throw new SyntaxError('expected ":" in a JSON object');
      i = skipSpace(text, i + 1);
      const end = valueEnd(text, i);
      obj[key] = text.slice(i, end);
      i = skipSpace(text, end);
      if (text[i] === ',')
        i = skipSpace(text, i + 1);
      else if (text[i] !== '}')
        throw new SyntaxError('expected "," or "}" in a JSON object');
    }
    out.push(obj);
    i = skipSpace(text, i + 1);
    if (text[i] === ',')
      i = skipSpace(text, i + 1);
    else if (text[i] !== ']')
      throw new SyntaxError('expected "," or "]" in a JSON array');
  }
  return out;
}

/*
 * A timestamptz as to_jsonb prints it ("2026-12-02T15:04:05.123456+00:00",
 * any offset, also with seconds) as a Date (to the millisecond); null for
 * "infinity" / "-infinity".
 */
function timestampOf(s) {
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/.exec(s);
  if (!m)
    return null;
  const ms = m[7] ? Number(`${m[7]}00`.slice(0, 3)) : 0;
  const offset = (m[8] === '-' ? -1 : 1)
    * ((Number(m[9]) * 60 + Number(m[10] || 0)) * 60 + Number(m[11] || 0)) * 1000;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms)
    - offset);
}

module.exports = { RawJSON, rawJSON, encode, decode, inexactReason, objectsOf, timestampOf };
