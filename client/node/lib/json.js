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

module.exports = { RawJSON, rawJSON, encode, decode, inexactReason };
