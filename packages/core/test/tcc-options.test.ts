import { JsonCodec, MemoryStorage, Tcc, type TccOptions } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { CapitalService, Ledger, registerShop } from './support/shop.js';

const storage = new MemoryStorage();

function storageWithout(method: string): never {
  const methods = ['create', 'update', 'complete', 'remove', 'get', 'findStuck', 'list', 'count', 'close'];
  return Object.fromEntries(methods.filter((m) => m !== method).map((m) => [m, () => {}])) as never;
}

describe('new Tcc refuses bad options with a message that names the value', () => {
  const cases: [string, Partial<TccOptions> | null, RegExp][] = [
    ['no options', null, /options must be an object, got null/],
    ['empty domain', { domain: '' }, /domain must be .* got ""/],
    ['domain with spaces', { domain: 'my shop' }, /got "my shop"/],
    ['domain not a string', { domain: 7 as unknown as string }, /domain .* got 7/],
    ['no storage', { domain: 'a', storage: undefined as never }, /storage must implement create, update/],
    [
      'storage lacking findStuck',
      { domain: 'a', storage: storageWithout('findStuck') },
      /storage must implement findStuck/,
    ],
    ['bad codec', { domain: 'a', storage, codec: {} as never }, /codec must implement encode, decode/],
    ['bad clock', { domain: 'a', storage, clock: { now: 5 } as never }, /clock must implement now/],
    ['timeoutMs zero', { domain: 'a', storage, timeoutMs: 0 }, /timeoutMs must be a positive integer, got 0/],
    ['timeoutMs fractional', { domain: 'a', storage, timeoutMs: 1.5 }, /timeoutMs .* got 1.5/],
    [
      'retainMs negative',
      { domain: 'a', storage, retainMs: -1 },
      /retainMs must be a non-negative integer, got -1/,
    ],
    [
      'maxRetries string',
      { domain: 'a', storage, recovery: { maxRetries: '3' as never } },
      /maxRetries .* got "3"/,
    ],
    ['batchSize zero', { domain: 'a', storage, recovery: { batchSize: 0 } }, /batchSize .* got 0/],
  ];
  for (const [name, options, message] of cases) {
    it(name, () => {
      const attempt = () => new Tcc({ storage, ...options } as TccOptions);
      const bare = () => new Tcc(options as TccOptions);
      const run = options === null ? bare : attempt;
      expect(run).toThrow(message);
      try {
        run();
      } catch (error) {
        expect((error as { code: string }).code).toBe('TCC_INVALID_OPTION');
      }
    });
  }

  it('refuses bad transaction options at call time, before anything is written', async () => {
    const store = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage: store });
    await expect(tcc.transaction(async () => {}, { propagation: 'SOMETIMES' as never })).rejects.toThrow(
      /propagation must be one of REQUIRED, REQUIRES_NEW, MANDATORY, SUPPORTS, got "SOMETIMES"/,
    );
    await expect(tcc.transaction(async () => {}, { timeoutMs: -5 })).rejects.toThrow(/timeoutMs .* got -5/);
    await expect(tcc.transaction(async () => {}, { delayCancelOn: ['Error'] as never })).rejects.toThrow(
      /delayCancelOn must be an array of error classes/,
    );
    await expect(tcc.transaction(async () => {}, { asyncConfirm: 'yes' as never })).rejects.toThrow(
      /asyncConfirm must be a boolean, got "yes"/,
    );
    expect(await store.count({})).toBe(0);
  });

  it('refuses startRecovery tuning that makes no sense', () => {
    const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage() });
    expect(() => tcc.startRecovery({ intervalMs: 0 })).toThrow(
      /intervalMs must be a positive integer, got 0/,
    );
  });
});

describe('arguments the codec cannot store', () => {
  it('are refused at try time with the path of the bad value, before anything is written or run', async () => {
    const store = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage: store });
    const ledger = new Ledger({ alice: 100 });
    const capital = registerShop(tcc, ledger);
    const transfer = { id: 'a', from: 'alice', amount: 1, customer: { callback: () => {} } };
    const outcome = tcc.transaction(() => capital.debit(transfer));
    await expect(outcome).rejects.toMatchObject({
      code: 'TCC_UNSERIALIZABLE_ARGUMENT',
      path: 'args[0].customer.callback',
    });
    await expect(outcome).rejects.toThrow(/args\[0\]\.customer\.callback/);
    expect(ledger.calls).toEqual([]);
    expect(await store.count({})).toBe(0);
  });

  it('refuse a class instance the codec was not told about, and accept it once registered', async () => {
    class Money {
      constructor(
        readonly amount: bigint,
        readonly currency: string,
      ) {}
    }
    const confirmed: unknown[] = [];
    const run = (codec: JsonCodec) => {
      const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage(), codec });
      const pay = tcc.compensable('pay', {
        try: async (_m: Money) => {},
        confirm: async (m: Money) => {
          confirmed.push(m);
        },
        cancel: async () => {},
      });
      return tcc.transaction(() => pay(new Money(5n, 'EUR')));
    };
    await expect(run(new JsonCodec())).rejects.toMatchObject({
      code: 'TCC_UNSERIALIZABLE_ARGUMENT',
      path: 'args[0]',
    });
    expect(confirmed).toEqual([]);
    await run(new JsonCodec({ classes: { Money } }));
    expect(confirmed[0]).toBeInstanceOf(Money);
    expect(confirmed[0]).toEqual(new Money(5n, 'EUR'));
  });
});

describe('register and startRecovery refuse bad input with a clear error', () => {
  it('refuses register options that are not an object, and objects without a class', () => {
    const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage() });
    expect(() => tcc.register(new CapitalService(new Ledger({})), null as never)).toThrow(
      /tcc.register\(instance, options\) must be an object, got null/,
    );
    expect(() => tcc.register(Object.create(null))).toThrow(/object has no @Compensable method/);
  });

  it('refuses startRecovery options of the wrong type, naming them', () => {
    const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage() });
    expect(() => tcc.startRecovery(null as never)).toThrow(
      /startRecovery\(options\) must be an object, got null/,
    );
    expect(() => tcc.startRecovery({ onError: 5 as never })).toThrow(/onError must be a function, got 5/);
    expect(() => tcc.startRecovery({ onResult: 'x' as never })).toThrow(
      /onResult must be a function, got "x"/,
    );
    expect(() => tcc.startRecovery({ recoverAfterMs: 0 } as never)).toThrow(
      /unknown option recoverAfterMs \(set recovery.recoverAfterMs on new Tcc\)/,
    );
  });

  it('refuses a recovery option that is not an object', () => {
    expect(() => new Tcc({ domain: 'order', storage, recovery: 'x' as never })).toThrow(
      /new Tcc: recovery must be an object, got "x"/,
    );
  });
});
