import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../base/errors.js';
import { UndecodableArgumentError, UnserializableArgumentError } from './errors.js';

/**
 * Turns a try's arguments into the text kept in the transaction log, and back.
 *
 * Confirm and cancel may run in another process after a crash, with nothing but that text, so a
 * codec must either restore an argument exactly or refuse it in `encode`: a value that comes back
 * different would make confirm or cancel do something other than what the try agreed to.
 */
export interface Codec {
  /** @throws {UnserializableArgumentError} before returning anything, if any argument cannot be restored. */
  encode(args: readonly unknown[]): string;
  /** @throws {UndecodableArgumentError} if `text` is not something this codec's `encode` returned. */
  decode(text: string): unknown[];
}

/** A class whose instances {@link JsonCodec} may store; it is restored without calling the constructor. */
export type CodecClass = abstract new (...args: never[]) => unknown;

/** Options of {@link JsonCodec}. */
export interface JsonCodecOptions {
  /**
   * Classes whose instances may appear in arguments, each under a name that is written to the log.
   * The name, not the class's `name`, is what ties stored data to the class, so keep it stable
   * across releases and minification, and register the same names in every process that may
   * confirm or cancel. An instance is stored as its own enumerable fields and restored with
   * `Object.create(Class.prototype)` plus those fields: state in `#private` fields, closures or
   * internal slots (subclasses of Map, Date, ...) is not kept, so register only plain data classes.
   */
  classes?: Record<string, CodecClass>;
}

/** Key that marks an object as a tagged special value in the stored JSON. */
const TAG = '$t';
/** First character of the text when some value is tagged; plain data is stored as bare JSON. */
const TAGGED = '~';
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Prototypes the codec encodes itself: registering one would be ambiguous or never used. */
const OWN_PROTOTYPES = new Set<object>([
  Object.prototype,
  Array.prototype,
  Date.prototype,
  Map.prototype,
  Set.prototype,
  Buffer.prototype,
  Uint8Array.prototype,
]);

type Json = null | boolean | number | string | Json[] | JsonObject;
interface JsonObject {
  [key: string]: Json;
}

/**
 * JSON with tags for what JSON cannot hold: undefined, NaN, ±Infinity, -0, bigint, Date, Buffer,
 * Uint8Array, Map, Set, null-prototype objects and registered class instances.
 *
 * A tagged value is an object `{"$t": <tag>, ...}`; a plain object that has its own `$t` key is
 * itself wrapped in a tag, so no user data is ever mistaken for one. Arguments without any tag
 * are stored as the bare JSON array and decoded with a single `JSON.parse`, which keeps the
 * common case (a few strings and numbers) about as cheap as JSON itself; otherwise the text
 * starts with `~`. Shared references are stored once per occurrence (identity is not kept);
 * array holes come back as `undefined`.
 *
 * Paths in {@link UnserializableArgumentError} and {@link UndecodableArgumentError}: `args[0]` is
 * the first argument, `.name` a property whose key is an identifier, `["odd key"]` any other
 * property (key as a JSON string), `[2]` an array index, `<Map key #3>` the key of a Map's entry
 * number 3, `<Map value "eur">` the value under a Map key (a string key JSON-quoted, a number,
 * boolean, null or bigint key written as in code, any other key as `#3`, its entry number), and
 * `<Set #1>` a Set's element number 1. Entry and element numbers count from 0 in insertion order.
 * Example: `args[0].prices<Map value "eur">.amount`.
 */
export class JsonCodec implements Codec {
  /** Registered prototype -> stored name, for encode. */
  readonly #names = new Map<object, string>();
  /** Stored name -> registered prototype, for decode. */
  readonly #prototypes = new Map<string, object>();

  /** @throws {InvalidOptionError} if a class entry is not a class, or a class is registered twice. */
  constructor(options: JsonCodecOptions = {}) {
    for (const [name, cls] of Object.entries(options.classes ?? {})) {
      const where = `JsonCodec option classes${propertySegment(name)}`;
      const proto: unknown = typeof cls === 'function' ? cls.prototype : undefined;
      if (typeof proto !== 'object' || proto === null) {
        throw new InvalidOptionError(`${where}: expected a class, found ${describeOption(cls)}`);
      }
      if (OWN_PROTOTYPES.has(proto)) {
        throw new InvalidOptionError(
          `${where}: ${cls.name} is encoded by the codec itself; do not register it`,
        );
      }
      const previous = this.#names.get(proto);
      if (previous !== undefined) {
        // Two names for one class would make the stored name depend on registration order.
        throw new InvalidOptionError(
          `${where}: class ${cls.name} is already registered as ${JSON.stringify(previous)}; give each class one name`,
        );
      }
      this.#names.set(proto, name);
      this.#prototypes.set(name, proto);
    }
  }

  encode(args: readonly unknown[]): string {
    // Most arguments are plain JSON: checking that allocates nothing, and then JSON.stringify
    // writes the same text the full walk would, without building a copy of the data first.
    if (isPlainArray(args, 0)) return JSON.stringify(args);
    const state: EncodeState = { names: this.#names, ancestors: [], tagged: false };
    let json: string;
    try {
      json = JSON.stringify(encodeArray(args, state));
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      const problem =
        error.targetDepth < 0
          ? error.problem
          : `${error.problem} (back to ${pathOf(error.segments.slice(error.targetDepth))})`;
      throw new UnserializableArgumentError(pathOf(error.segments), problem);
    }
    return state.tagged ? TAGGED + json : json;
  }

  decode(text: string): unknown[] {
    const tagged = text.startsWith(TAGGED);
    let parsed: unknown;
    try {
      parsed = JSON.parse(tagged ? text.slice(TAGGED.length) : text);
    } catch (error) {
      throw new UndecodableArgumentError('args', `not valid JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
    if (!Array.isArray(parsed)) {
      throw new UndecodableArgumentError('args', `expected a JSON array, found ${describeJson(parsed)}`);
    }
    if (!tagged) return parsed;
    try {
      reviveArray(parsed, this.#prototypes);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      throw new UndecodableArgumentError(pathOf(error.segments), error.problem);
    }
    return parsed;
  }
}

/**
 * Thrown where a value is refused; every container it unwinds through adds its segment, so
 * paths cost nothing unless something goes wrong. Not an Error: it never escapes this module.
 */
class Refusal {
  readonly problem: string;
  /** The ancestor a circular reference points back to. */
  readonly target: object | undefined;
  /** Innermost first. */
  readonly segments: string[] = [];
  /** Number of innermost segments that lead from `target` to the refused value; -1 if no target. */
  targetDepth = -1;

  constructor(problem: string, target?: object) {
    this.problem = problem;
    this.target = target;
  }
}

function withSegment(error: unknown, segment: string, container?: object): unknown {
  if (error instanceof Refusal) {
    error.segments.push(segment);
    if (error.target !== undefined && error.target === container) error.targetDepth = error.segments.length;
  }
  return error;
}

function pathOf(innermostFirst: readonly string[]): string {
  let path = 'args';
  for (let i = innermostFirst.length - 1; i >= 0; i--) path += innermostFirst[i];
  return path;
}

function propertySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function mapSegment(inKey: boolean, key: unknown, index: number): string {
  if (inKey) return `<Map key #${index}>`;
  switch (typeof key) {
    case 'string':
      return `<Map value ${JSON.stringify(key)}>`;
    case 'number':
    case 'boolean':
      return `<Map value ${key}>`;
    case 'bigint':
      return `<Map value ${key}n>`;
    default:
      return key === null ? '<Map value null>' : `<Map value #${index}>`;
  }
}

// ---------------------------------------------------------------------------------------------
// encode

/** Beyond this depth the full walk decides (it also detects cycles, which this check cannot). */
const PLAIN_DEPTH = 16;

/** True if the value is stored as bare JSON: nothing to tag, escape or refuse. */
function isPlain(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0);
    case 'object': {
      if (value === null) return true;
      if (depth >= PLAIN_DEPTH) return false;
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Array.prototype) return Array.isArray(value) && isPlainArray(value, depth + 1);
      if (proto !== Object.prototype || Object.getOwnPropertySymbols(value).length > 0) return false;
      for (const key of Object.keys(value)) {
        if (key === TAG || key === '__proto__') return false;
        if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function isPlainArray(values: readonly unknown[], depth: number): boolean {
  for (let i = 0; i < values.length; i++) if (!isPlain(values[i], depth)) return false;
  return true;
}

interface EncodeState {
  readonly names: ReadonlyMap<object, string>;
  /** Containers being walked: a value found among them is a cycle, elsewhere merely shared. */
  readonly ancestors: object[];
  /** Whether any tag was written, which decides the text's format. */
  tagged: boolean;
}

function tagged(state: EncodeState, tag: string, v: Json): JsonObject {
  state.tagged = true;
  return { $t: tag, v };
}

function encodeValue(value: unknown, state: EncodeState): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value) && (value !== 0 || 1 / value > 0)) return value;
      return tagged(state, 'number', Object.is(value, -0) ? '-0' : String(value));
    case 'object':
      return value === null ? null : encodeObject(value, state);
    case 'undefined':
      state.tagged = true;
      return { $t: 'undefined' };
    case 'bigint':
      return tagged(state, 'bigint', value.toString());
    case 'function':
      throw new Refusal('a function');
    case 'symbol':
      throw new Refusal(`a symbol (${value.toString()})`);
  }
}

function encodeObject(obj: object, state: EncodeState): Json {
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto === Object.prototype) {
    const fields = encodeFields(obj, state);
    // A user's own `$t` key would read back as a tag: wrap such an object so it stays data.
    return fields[TAG] === undefined ? fields : tagged(state, 'object', fields);
  }
  if (proto === Array.prototype && Array.isArray(obj)) return encodeArray(obj, state);
  if (proto === null) return tagged(state, 'null-prototype', encodeFields(obj, state));
  if (obj instanceof Date && proto === Date.prototype) {
    const time = obj.getTime();
    return tagged(state, 'Date', Number.isNaN(time) ? null : obj.toISOString());
  }
  if (obj instanceof Uint8Array && (proto === Buffer.prototype || proto === Uint8Array.prototype)) {
    const base64 = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64');
    return tagged(state, proto === Buffer.prototype ? 'Buffer' : 'Uint8Array', base64);
  }
  if (obj instanceof Map && proto === Map.prototype) return encodeMap(obj, state);
  if (obj instanceof Set && proto === Set.prototype) return encodeSet(obj, state);
  const name = state.names.get(proto as object);
  if (name === undefined) throw new Refusal(describeInstance(proto as object));
  state.tagged = true;
  return { $t: 'class', name, v: encodeFields(obj, state) };
}

function enter(container: object, state: EncodeState): void {
  if (state.ancestors.includes(container)) throw new Refusal('a circular reference', container);
  state.ancestors.push(container);
}

function encodeArray(arr: readonly unknown[], state: EncodeState): Json[] {
  enter(arr, state);
  const out: Json[] = [];
  let i = 0;
  try {
    for (; i < arr.length; i++) out.push(encodeValue(arr[i], state));
  } catch (error) {
    throw withSegment(error, `[${i}]`, arr);
  }
  state.ancestors.pop();
  return out;
}

/** Own enumerable string-keyed properties, read through getters, encoded one by one. */
function encodeFields(obj: object, state: EncodeState): JsonObject {
  const symbols = Object.getOwnPropertySymbols(obj);
  if (symbols.length > 0) refuseSymbolKeys(obj, symbols);
  enter(obj, state);
  const out: JsonObject = {};
  let key = '';
  try {
    for (key of Object.keys(obj)) {
      const value = encodeValue((obj as Record<string, unknown>)[key], state);
      // Assigning `__proto__` would set the prototype instead of adding the key.
      if (key === '__proto__') defineField(out, key, value);
      else out[key] = value;
    }
  } catch (error) {
    throw withSegment(error, propertySegment(key), obj);
  }
  state.ancestors.pop();
  return out;
}

/** JSON cannot hold symbol keys, and dropping them silently would change the data. */
function refuseSymbolKeys(obj: object, symbols: readonly symbol[]): void {
  // Non-enumerable symbols are left out like non-enumerable string keys: they are metadata, not data.
  const symbol = symbols.find((s) => Object.prototype.propertyIsEnumerable.call(obj, s));
  if (symbol !== undefined)
    throw new Refusal(`an object with a symbol-keyed property (${symbol.toString()})`);
}

function encodeMap(map: ReadonlyMap<unknown, unknown>, state: EncodeState): Json {
  enter(map, state);
  const entries: Json[] = [];
  let i = 0;
  let inKey = true;
  let key: unknown;
  try {
    for (const [k, v] of map) {
      key = k;
      inKey = true;
      const encodedKey = encodeValue(k, state);
      inKey = false;
      entries.push([encodedKey, encodeValue(v, state)]);
      i++;
    }
  } catch (error) {
    throw withSegment(error, mapSegment(inKey, key, i), map);
  }
  state.ancestors.pop();
  return tagged(state, 'Map', entries);
}

function encodeSet(set: ReadonlySet<unknown>, state: EncodeState): Json {
  enter(set, state);
  const values: Json[] = [];
  let i = 0;
  try {
    for (const v of set) {
      values.push(encodeValue(v, state));
      i++;
    }
  } catch (error) {
    throw withSegment(error, `<Set #${i}>`, set);
  }
  state.ancestors.pop();
  return tagged(state, 'Set', values);
}

function describeInstance(proto: object): string {
  const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  if (typeof ctor !== 'function' || ctor.name === '') {
    return 'an object with a custom prototype or of an anonymous class (register its class with new JsonCodec({ classes }))';
  }
  if (ctor === Promise) return 'a Promise (await it and pass the result)';
  if ((globalThis as Record<string, unknown>)[ctor.name] === ctor) {
    return `an instance of ${ctor.name}, a built-in class the codec cannot restore`;
  }
  return `an instance of class ${ctor.name} (${registerHint(ctor.name)})`;
}

function registerHint(name: string): string {
  const entry = IDENTIFIER.test(name) ? name : `${JSON.stringify(name)}: YourClass`;
  return `register it with new JsonCodec({ classes: { ${entry} } })`;
}

function describeOption(value: unknown): string {
  if (typeof value === 'function') return 'a function without a prototype (an arrow function or a method)';
  return value === null ? 'null' : typeof value;
}

function defineField(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------
// decode: rewrites the freshly parsed tree in place, which is ours to change.

type Prototypes = ReadonlyMap<string, object>;

function revive(value: unknown, prototypes: Prototypes): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return reviveArray(value, prototypes);
  const obj = value as Record<string, unknown>;
  const tag = obj[TAG];
  return tag === undefined ? reviveFields(obj, obj, prototypes, false) : reviveTagged(obj, tag, prototypes);
}

function reviveArray(arr: unknown[], prototypes: Prototypes): unknown[] {
  let i = 0;
  try {
    for (; i < arr.length; i++) arr[i] = revive(arr[i], prototypes);
  } catch (error) {
    throw withSegment(error, `[${i}]`);
  }
  return arr;
}

/** `define` for class instances, whose prototype may have setters that assignment would call. */
function reviveFields(
  src: Record<string, unknown>,
  target: object,
  prototypes: Prototypes,
  define: boolean,
): object {
  let key = '';
  try {
    for (key of Object.keys(src)) {
      const value = revive(src[key], prototypes);
      // Plain assignment is safe for `__proto__` here: an in-place target already owns that key
      // and a null-prototype target has no setter for it.
      if (define) defineField(target, key, value);
      else (target as Record<string, unknown>)[key] = value;
    }
  } catch (error) {
    throw withSegment(error, propertySegment(key));
  }
  return target;
}

const SPECIAL_NUMBERS: ReadonlyMap<unknown, number> = new Map([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['-0', -0],
]);

function reviveTagged(obj: Record<string, unknown>, tag: unknown, prototypes: Prototypes): unknown {
  const v = obj.v;
  switch (tag) {
    case 'undefined':
      return undefined;
    case 'number': {
      const n = SPECIAL_NUMBERS.get(v);
      if (n === undefined) throw malformed(tag);
      return n;
    }
    case 'bigint':
      if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw malformed(tag);
      return BigInt(v);
    case 'Date': {
      if (v !== null && typeof v !== 'string') throw malformed(tag);
      const date = new Date(v ?? Number.NaN);
      if (v !== null && Number.isNaN(date.getTime())) throw malformed(tag);
      return date;
    }
    case 'Buffer':
      if (typeof v !== 'string') throw malformed(tag);
      return Buffer.from(v, 'base64');
    case 'Uint8Array':
      if (typeof v !== 'string') throw malformed(tag);
      return new Uint8Array(Buffer.from(v, 'base64'));
    case 'Map':
      return reviveMap(v, prototypes);
    case 'Set':
      return reviveSet(v, prototypes);
    case 'object': {
      const fields = fieldsOf(v, tag);
      return reviveFields(fields, fields, prototypes, false);
    }
    case 'null-prototype':
      return reviveFields(fieldsOf(v, tag), Object.create(null), prototypes, false);
    case 'class': {
      const name = obj.name;
      if (typeof name !== 'string') throw malformed(tag);
      const proto = prototypes.get(name);
      if (proto === undefined) {
        throw new Refusal(
          `class ${JSON.stringify(name)} is not registered in this codec (${registerHint(name)})`,
        );
      }
      return reviveFields(fieldsOf(v, tag), Object.create(proto), prototypes, true);
    }
    default:
      throw new Refusal(`unknown tag ${JSON.stringify(tag)}`);
  }
}

function reviveMap(entries: unknown, prototypes: Prototypes): Map<unknown, unknown> {
  if (!Array.isArray(entries)) throw malformed('Map');
  const map = new Map<unknown, unknown>();
  let i = 0;
  let inKey = true;
  let key: unknown;
  try {
    for (; i < entries.length; i++) {
      const entry: unknown = entries[i];
      inKey = true;
      if (!Array.isArray(entry) || entry.length !== 2)
        throw new Refusal('a Map entry that is not a [key, value] pair');
      key = revive(entry[0], prototypes);
      inKey = false;
      map.set(key, revive(entry[1], prototypes));
    }
  } catch (error) {
    throw withSegment(error, mapSegment(inKey, key, i));
  }
  return map;
}

function reviveSet(values: unknown, prototypes: Prototypes): Set<unknown> {
  if (!Array.isArray(values)) throw malformed('Set');
  const set = new Set<unknown>();
  let i = 0;
  try {
    for (; i < values.length; i++) set.add(revive(values[i], prototypes));
  } catch (error) {
    throw withSegment(error, `<Set #${i}>`);
  }
  return set;
}

function fieldsOf(v: unknown, tag: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(tag);
  return v as Record<string, unknown>;
}

function malformed(tag: string): Refusal {
  return new Refusal(`malformed ${JSON.stringify(tag)} tag`);
}

function describeJson(value: unknown): string {
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
