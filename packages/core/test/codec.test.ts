import { describe, expect, it } from 'vitest';
import { InvalidOptionError, TccError } from '../src/base/errors.js';
import { JsonCodec } from '../src/codec/codec.js';
import { UndecodableArgumentError, UnserializableArgumentError } from '../src/codec/errors.js';

class Money {
  amount: number;
  currency: string;

  constructor(amount: number, currency: string) {
    this.amount = amount;
    this.currency = currency;
  }

  format(): string {
    return `${this.amount} ${this.currency}`;
  }
}

class Customer {
  static constructed = 0;
  name: string;
  balance: Money;

  constructor(name: string, balance: Money) {
    Customer.constructed++;
    this.name = name;
    this.balance = balance;
  }

  // A setter on the prototype must not be triggered when fields are restored.
  set nickname(_value: string) {
    throw new Error('setter called');
  }
}

const codec = new JsonCodec();
const withClasses = new JsonCodec({ classes: { Money, Customer } });

function roundTrip(args: unknown[], using: JsonCodec = codec): unknown[] {
  return using.decode(using.encode(args));
}

/** Runs `fn`, expects it to throw, and returns the error. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function encodeError(args: unknown[], using: JsonCodec = codec): UnserializableArgumentError {
  const error = thrown(() => using.encode(args));
  expect(error).toBeInstanceOf(UnserializableArgumentError);
  expect(error).toBeInstanceOf(TccError);
  const e = error as UnserializableArgumentError;
  expect(e.code).toBe('TCC_UNSERIALIZABLE_ARGUMENT');
  return e;
}

function decodeError(text: string, using: JsonCodec = codec): UndecodableArgumentError {
  const error = thrown(() => using.decode(text));
  expect(error).toBeInstanceOf(UndecodableArgumentError);
  expect(error).toBeInstanceOf(TccError);
  const e = error as UndecodableArgumentError;
  expect(e.code).toBe('TCC_UNDECODABLE_ARGUMENT');
  return e;
}

describe('JsonCodec round-trips', () => {
  it('keeps plain JSON data as bare JSON, decodable by JSON.parse', () => {
    const args = [{ orderId: 'o-1', userId: 'u-1', amount: 100 }, 'x', 1.5, true, null, [1, [2]]];
    const text = codec.encode(args);
    expect(text).toBe(JSON.stringify(args));
    expect(codec.decode(text)).toStrictEqual(args);
  });

  it('marks text with tags so plain data never needs a walk', () => {
    expect(codec.encode([undefined]).startsWith('~')).toBe(true);
    expect(codec.encode([1]).startsWith('~')).toBe(false);
  });

  it('keeps null, booleans, strings and ordinary numbers', () => {
    const args = [
      null,
      true,
      false,
      '',
      'héllo \u2028 "quoted" \ud83d\ude00',
      0,
      42,
      -7.25,
      Number.MAX_VALUE,
      5e-324,
    ];
    expect(roundTrip(args)).toStrictEqual(args);
  });

  it('keeps NaN, Infinity, -Infinity and -0', () => {
    const [nan, inf, negInf, negZero, zero] = roundTrip([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      0,
    ]);
    expect(Number.isNaN(nan)).toBe(true);
    expect(inf).toBe(Number.POSITIVE_INFINITY);
    expect(negInf).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(negZero, -0)).toBe(true);
    expect(Object.is(zero, 0)).toBe(true);
  });

  it('keeps bigint', () => {
    const args = [0n, -1n, 123456789012345678901234567890n, { total: -98765432109876543210n }];
    const decoded = roundTrip(args);
    expect(decoded).toStrictEqual(args);
    expect(typeof decoded[2]).toBe('bigint');
  });

  it('keeps undefined as an argument, an array element and an object property', () => {
    const decoded = roundTrip([undefined, [1, undefined, 3], { a: undefined, b: 1 }, undefined]);
    expect(decoded).toHaveLength(4);
    expect(decoded).toStrictEqual([undefined, [1, undefined, 3], { a: undefined, b: 1 }, undefined]);
    const obj = decoded[2] as Record<string, unknown>;
    expect(Object.keys(obj)).toEqual(['a', 'b']);
    expect('a' in obj).toBe(true);
    expect(1 in (decoded[1] as unknown[])).toBe(true);
  });

  it('turns array holes into undefined', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const decoded = roundTrip([[1, , 3]])[0] as unknown[];
    expect(decoded).toHaveLength(3);
    expect(1 in decoded).toBe(true);
    expect(decoded[1]).toBeUndefined();
  });

  it('keeps Dates, including invalid and far-off ones', () => {
    const valid = new Date('2024-02-29T12:34:56.789Z');
    const [d, invalid, far, old] = roundTrip([
      valid,
      new Date(Number.NaN),
      new Date(8.64e15),
      new Date(-62198755200000),
    ]) as Date[];
    expect(d).toBeInstanceOf(Date);
    expect(d?.getTime()).toBe(valid.getTime());
    expect(invalid).toBeInstanceOf(Date);
    expect(Number.isNaN(invalid?.getTime())).toBe(true);
    expect(far?.getTime()).toBe(8.64e15);
    expect(old?.getTime()).toBe(-62198755200000);
  });

  it('keeps Buffers as Buffers and Uint8Arrays as Uint8Arrays', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const [buf, arr, empty] = roundTrip([Buffer.from('héllo'), bytes, Buffer.alloc(0)]);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect((buf as Buffer).toString()).toBe('héllo');
    expect(Buffer.isBuffer(arr)).toBe(false);
    expect(Object.getPrototypeOf(arr)).toBe(Uint8Array.prototype);
    expect(arr).toStrictEqual(bytes);
    expect(Buffer.isBuffer(empty)).toBe(true);
    expect((empty as Buffer).length).toBe(0);
  });

  it('stores only the bytes a view covers', () => {
    const view = new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 3);
    expect(roundTrip([view])[0]).toStrictEqual(new Uint8Array([8, 7]));
  });

  it('keeps Maps and Sets with encoded keys and values, in insertion order', () => {
    const map = new Map<unknown, unknown>([
      ['z', 1],
      [2, new Date(5)],
      [{ k: 1 }, undefined],
      [10n, new Set([3, 1, 2])],
    ]);
    const set = new Set<unknown>(['b', 'a', { x: -0 }, new Map([[1, 2]])]);
    const [m, s] = roundTrip([map, set]) as [Map<unknown, unknown>, Set<unknown>];
    expect(m).toBeInstanceOf(Map);
    expect(s).toBeInstanceOf(Set);
    expect(m).toStrictEqual(map);
    expect(s).toStrictEqual(set);
    expect([...m.keys()]).toStrictEqual(['z', 2, { k: 1 }, 10n]);
    expect([...(m.get(10n) as Set<number>)]).toStrictEqual([3, 1, 2]);
    expect([...s][0]).toBe('b');
    expect(Object.is(([...s][2] as { x: number }).x, -0)).toBe(true);
  });

  it('keeps null-prototype objects', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, {
      a: 1,
      nested: { b: undefined },
    });
    const decoded = roundTrip([bare])[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBeNull();
    expect(Object.getPrototypeOf(decoded.nested)).toBe(Object.prototype);
    expect(decoded).toStrictEqual(bare);
  });

  it('keeps plain objects plain, with their key order', () => {
    const decoded = roundTrip([{ b: 1, a: new Date(0), c: 'x' }])[0] as object;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['b', 'a', 'c']);
  });

  it('keeps nested combinations at any depth', () => {
    let deep: unknown = { leaf: [undefined, 1n] };
    for (let i = 0; i < 300; i++) deep = i % 2 === 0 ? { child: deep, i } : [deep, new Map([[i, i]])];
    const args = [
      {
        order: {
          id: 'o-1',
          lines: [{ sku: 'a', qty: 2n, at: new Date(1) }],
          meta: new Map([['k', new Set([undefined])]]),
        },
        deep,
      },
      [new Map([[new Date(2), [Buffer.from('x'), { n: Number.NaN }]]])],
    ];
    expect(roundTrip(args)).toStrictEqual(args);
  });

  it('encodes a value shared by two fields, which is not a cycle', () => {
    const shared = { a: 1 };
    const decoded = roundTrip([{ x: shared, y: shared }, shared])[0];
    expect(decoded).toStrictEqual({ x: { a: 1 }, y: { a: 1 } });
  });

  it('reads getters as values', () => {
    const obj = {
      base: 2,
      get doubled() {
        return this.base * 2;
      },
    };
    const decoded = roundTrip([obj])[0] as Record<string, unknown>;
    expect(decoded).toStrictEqual({ base: 2, doubled: 4 });
    expect(Object.getOwnPropertyDescriptor(decoded, 'doubled')?.get).toBeUndefined();
  });

  it('escapes objects that use the tag key themselves', () => {
    const args = [
      { $t: 'Date', v: '2020-01-01T00:00:00.000Z' },
      { $t: 'class', name: 'Money', v: { amount: 1 } },
      { $t: 'undefined' },
      { $t: { $t: 'bigint', v: '1' } },
      { outer: [{ $t: 'object', v: { $t: 'x' } }] },
      Object.assign(Object.create(null) as object, { $t: 'Map', v: [] }),
      new Map([[{ $t: 'Set' }, { $t: 'Set', v: [] }]]),
    ];
    const decoded = roundTrip(args);
    expect(decoded).toStrictEqual(args);
    expect(Object.getPrototypeOf(decoded[5])).toBeNull();
  });

  it('escapes the tag key alongside other tags', () => {
    const args = [{ $t: 'undefined', other: undefined }];
    expect(roundTrip(args)).toStrictEqual(args);
  });

  it('keeps an own __proto__ key as data, without changing the prototype', () => {
    const plain = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as object;
    const tagged = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    tagged.b = undefined;
    const bare = JSON.parse('{"__proto__": {"polluted": true}}', (_key, value) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? Object.assign(Object.create(null) as object, value)
        : value,
    ) as object;
    const decodedBare = roundTrip([bare])[0] as object;
    expect(Object.getPrototypeOf(decodedBare)).toBeNull();
    expect(Object.getOwnPropertyDescriptor(decodedBare, '__proto__')?.value).toStrictEqual(
      Object.assign(Object.create(null) as object, { polluted: true }),
    );
    for (const value of [plain, tagged]) {
      const decoded = roundTrip([value])[0] as Record<string, unknown>;
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.hasOwn(decoded, '__proto__')).toBe(true);
      expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toStrictEqual({ polluted: true });
      expect((decoded as { polluted?: unknown }).polluted).toBeUndefined();
    }
  });

  it('restores registered classes without calling their constructor', () => {
    const customer = new Customer('Ada', new Money(12, 'EUR'));
    const before = Customer.constructed;
    const other = new JsonCodec({ classes: { Money, Customer } }); // as in another process
    const [decoded, prices] = other.decode(
      withClasses.encode([customer, new Map([['eur', new Money(1, 'EUR')]])]),
    ) as [Customer, Map<string, Money>];
    expect(Customer.constructed).toBe(before);
    expect(decoded).toBeInstanceOf(Customer);
    expect(decoded.balance).toBeInstanceOf(Money);
    expect(decoded.balance.format()).toBe('12 EUR');
    expect(decoded.name).toBe('Ada');
    expect(decoded).toStrictEqual(customer);
    expect(prices.get('eur')?.format()).toBe('1 EUR');
  });

  it('restores fields named like a prototype setter as own data', () => {
    const customer = new Customer('Bob', new Money(1, 'USD'));
    Object.defineProperty(customer, 'nickname', { value: 'bobby', enumerable: true, writable: true });
    const decoded = roundTrip([customer], withClasses)[0] as Customer & { nickname: string };
    expect(decoded.nickname).toBe('bobby');
    expect(decoded).toBeInstanceOf(Customer);
  });

  it('stores classes under the registered name, not the class name', () => {
    const renamed = new JsonCodec({ classes: { 'billing.Money': Money } });
    const text = renamed.encode([new Money(5, 'EUR')]);
    expect(text).toContain('"billing.Money"');
    expect((renamed.decode(text)[0] as Money).format()).toBe('5 EUR');
  });
});

describe('JsonCodec refuses what it cannot restore', () => {
  it('refuses a function, with its path', () => {
    const e = encodeError([{ id: 1 }, { customer: { name: 'x', callback: () => 1 } }]);
    expect(e.path).toBe('args[1].customer.callback');
    expect(e.message).toBe('cannot encode args[1].customer.callback: a function');
  });

  it('refuses an unregistered class instance and says how to register it', () => {
    const e = encodeError([{}, { items: [1, 2, new Money(1, 'EUR')] }]);
    expect(e.path).toBe('args[1].items[2]');
    expect(e.message).toBe(
      'cannot encode args[1].items[2]: an instance of class Money (register it with new JsonCodec({ classes: { Money } }))',
    );
  });

  it('refuses a subclass of a registered class', () => {
    class Euro extends Money {}
    const e = encodeError([new Euro(1, 'EUR')], withClasses);
    expect(e.path).toBe('args[0]');
    expect(e.message).toContain('class Euro');
  });

  it('refuses a top-level function argument', () => {
    const e = encodeError([function named() {}]);
    expect(e.path).toBe('args[0]');
  });

  it('refuses symbols as values and as keys', () => {
    const value = encodeError([{ kind: Symbol('k') }]);
    expect(value.path).toBe('args[0].kind');
    expect(value.message).toBe('cannot encode args[0].kind: a symbol (Symbol(k))');

    const key = encodeError([{ inner: { a: 1, [Symbol('meta')]: 2 } }]);
    expect(key.path).toBe('args[0].inner');
    expect(key.message).toContain('symbol-keyed property (Symbol(meta))');
  });

  it('ignores non-enumerable symbol keys, like non-enumerable string keys', () => {
    const obj = { a: 1 };
    Object.defineProperty(obj, Symbol('hidden'), { value: 1, enumerable: false });
    Object.defineProperty(obj, 'hidden', { value: 1, enumerable: false });
    expect(roundTrip([obj])).toStrictEqual([{ a: 1 }]);
  });

  it.each([
    ['Error', new Error('boom'), 'an instance of Error, a built-in class the codec cannot restore'],
    ['RegExp', /x/, 'an instance of RegExp, a built-in class the codec cannot restore'],
    ['WeakMap', new WeakMap(), 'an instance of WeakMap, a built-in class the codec cannot restore'],
    ['Int32Array', new Int32Array(1), 'an instance of Int32Array, a built-in class the codec cannot restore'],
    ['Promise', Promise.resolve(1), 'a Promise (await it and pass the result)'],
    ['boxed number', Object(1) as object, 'an instance of Number, a built-in class the codec cannot restore'],
  ])('refuses %s', (_name, value, found) => {
    const e = encodeError([{ v: [value] }]);
    expect(e.path).toBe('args[0].v[0]');
    expect(e.message).toBe(`cannot encode args[0].v[0]: ${found}`);
  });

  it('refuses objects with a foreign prototype', () => {
    const e = encodeError([Object.create({ inherited: 1 }) as object]);
    expect(e.path).toBe('args[0]');
    expect(e.message).toContain('custom prototype');
  });

  it('quotes keys that are not identifiers', () => {
    expect(encodeError([{ 'odd key': { 'x-y': [() => 1] } }]).path).toBe('args[0]["odd key"]["x-y"][0]');
    expect(encodeError([{ 2: () => 1 }]).path).toBe('args[0]["2"]');
    expect(encodeError([{ $ok_1: () => 1 }]).path).toBe('args[0].$ok_1');
  });

  it('names Map keys, Map values and Set elements', () => {
    const prices = new Map<unknown, unknown>([
      ['usd', 1],
      ['eur', { amount: () => 1 }],
    ]);
    expect(encodeError([{ prices }]).path).toBe('args[0].prices<Map value "eur">.amount');
    expect(encodeError([new Map([[7, () => 1]])]).path).toBe('args[0]<Map value 7>');
    expect(encodeError([new Map([[3n, () => 1]])]).path).toBe('args[0]<Map value 3n>');
    expect(
      encodeError([
        new Map<unknown, unknown>([
          [{ k: 1 }, 'ok'],
          [{}, () => 1],
        ]),
      ]).path,
    ).toBe('args[0]<Map value #1>');
    expect(
      encodeError([
        new Map<unknown, unknown>([
          ['a', 1],
          [new Money(1, 'x'), 2],
        ]),
      ]).path,
    ).toBe('args[0]<Map key #1>');
    expect(encodeError([new Set<unknown>(['a', Symbol('s')])]).path).toBe('args[0]<Set #1>');
  });

  it('names fields of null-prototype objects and registered classes', () => {
    const bare = Object.assign(Object.create(null) as object, { cb: () => 1 });
    expect(encodeError([bare]).path).toBe('args[0].cb');
    const customer = new Customer('x', new Money(1, 'EUR'));
    (customer.balance as unknown as Record<string, unknown>).amount = () => 1;
    expect(encodeError([customer], withClasses).path).toBe('args[0].balance.amount');
  });

  it('refuses circular references and says where they point', () => {
    const node: Record<string, unknown> = { name: 'a', child: { list: [] as unknown[] } };
    ((node.child as Record<string, unknown>).list as unknown[]).push(node);
    const e = encodeError([1, node]);
    expect(e.path).toBe('args[1].child.list[0]');
    expect(e.message).toBe('cannot encode args[1].child.list[0]: a circular reference (back to args[1])');
  });

  it('refuses cycles through Maps, Sets and the argument list itself', () => {
    const map = new Map<string, unknown>();
    map.set('self', { map });
    expect(encodeError([map]).message).toBe(
      'cannot encode args[0]<Map value "self">.map: a circular reference (back to args[0])',
    );
    const set = new Set<unknown>();
    set.add([set]);
    expect(encodeError([{ s: set }]).message).toBe(
      'cannot encode args[0].s<Set #0>[0]: a circular reference (back to args[0].s)',
    );
    const args: unknown[] = [1];
    args.push({ args });
    expect(encodeError(args).message).toBe('cannot encode args[1].args: a circular reference (back to args)');
  });

  it('lets errors thrown by getters through unchanged', () => {
    const boom = new Error('getter failed');
    const obj = {
      get x() {
        throw boom;
      },
    };
    expect(thrown(() => codec.encode([obj]))).toBe(boom);
  });
});

describe('JsonCodec.decode refuses what it did not write', () => {
  it('refuses text that is not JSON', () => {
    for (const text of ['', '[1,', '~{', 'undefined']) {
      const e = decodeError(text);
      expect(e.path).toBe('args');
      expect(e.message).toMatch(/^cannot decode args: not valid JSON \(/);
      expect(e.cause).toBeInstanceOf(SyntaxError);
    }
  });

  it('refuses JSON that is not an argument list', () => {
    expect(decodeError('{"a":1}').message).toBe('cannot decode args: expected a JSON array, found an object');
    expect(decodeError('~"x"').message).toBe('cannot decode args: expected a JSON array, found a string');
  });

  it('refuses unknown tags, with their path', () => {
    const e = decodeError('~[{"a":[1,{"$t":"Regex","v":"x"}]}]');
    expect(e.path).toBe('args[0].a[1]');
    expect(e.message).toBe('cannot decode args[0].a[1]: unknown tag "Regex"');
  });

  it('refuses classes that are not registered in this codec', () => {
    const text = withClasses.encode([{ m: new Map([['eur', new Money(1, 'EUR')]]) }]);
    const e = decodeError(text, new JsonCodec({ classes: { Customer } }));
    expect(e.path).toBe('args[0].m<Map value "eur">');
    expect(e.message).toBe(
      'cannot decode args[0].m<Map value "eur">: class "Money" is not registered in this codec ' +
        '(register it with new JsonCodec({ classes: { Money } }))',
    );
  });

  it.each([
    ['number', '~[{"$t":"number","v":"42"}]'],
    ['bigint', '~[{"$t":"bigint","v":"0x10"}]'],
    ['Date', '~[{"$t":"Date","v":"not a date"}]'],
    ['Buffer', '~[{"$t":"Buffer","v":1}]'],
    ['Map', '~[{"$t":"Map","v":{}}]'],
    ['Set', '~[{"$t":"Set"}]'],
    ['class', '~[{"$t":"class","v":{}}]'],
    ['null-prototype', '~[{"$t":"null-prototype","v":[]}]'],
  ])('refuses a malformed %s tag', (tag, text) => {
    expect(decodeError(text, withClasses).message).toBe(`cannot decode args[0]: malformed "${tag}" tag`);
  });

  it('refuses a Map entry that is not a pair', () => {
    const e = decodeError('~[{"$t":"Map","v":[["a",1],["b"]]}]');
    expect(e.path).toBe('args[0]<Map key #1>');
  });

  it('reads tag-like objects in untagged text as plain data', () => {
    expect(codec.decode('[{"$t":"undefined"}]')).toStrictEqual([{ $t: 'undefined' }]);
  });
});

describe('JsonCodec options', () => {
  function optionError(fn: () => unknown): InvalidOptionError {
    const error = thrown(fn);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toBeInstanceOf(TccError);
    expect((error as InvalidOptionError).code).toBe('TCC_INVALID_OPTION');
    return error as InvalidOptionError;
  }

  it('refuses an entry that is not a class, naming it', () => {
    const notClass = { Money, Broken: 'Money' } as unknown as Record<string, typeof Money>;
    expect(optionError(() => new JsonCodec({ classes: notClass })).message).toBe(
      'JsonCodec option classes.Broken: expected a class, found string',
    );
    const arrow = { 'my arrow': () => 1 } as unknown as Record<string, typeof Money>;
    expect(optionError(() => new JsonCodec({ classes: arrow })).message).toMatch(
      /^JsonCodec option classes\["my arrow"\]: expected a class, found a function without a prototype/,
    );
  });

  it('refuses a class registered under two names, naming both', () => {
    expect(optionError(() => new JsonCodec({ classes: { Money, Cash: Money } })).message).toBe(
      'JsonCodec option classes.Cash: class Money is already registered as "Money"; give each class one name',
    );
  });

  it('refuses classes the codec encodes itself', () => {
    expect(optionError(() => new JsonCodec({ classes: { Map } })).message).toContain('classes.Map');
    expect(optionError(() => new JsonCodec({ classes: { Obj: Object } })).message).toContain('classes.Obj');
  });

  it('accepts no options', () => {
    expect(new JsonCodec({}).decode(new JsonCodec().encode([1]))).toStrictEqual([1]);
  });
});
