// `tcc.compensable(name, { try, confirm, cancel })`: the same participant as a decorated method,
// without classes or decorators.
import {
  DuplicateParticipantError,
  InvalidOptionError,
  InvalidParticipantError,
  MemoryStorage,
  Tcc,
  TransactionRequiredError,
} from '@tcc/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as classes from './legacy/classes.js';

interface Order {
  id: string;
  at: Date;
  items: Map<string, number>;
}

function setup() {
  const storage = new MemoryStorage();
  const tcc = new Tcc({ domain: 'shop', storage, retainMs: 60_000 });
  const log: string[] = [];
  return { storage, tcc, log };
}

/** Runs `fn` and returns what it threw (synchronously), failing the test if it did not throw. */
function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

const noop = async () => {};

describe('tcc.compensable', () => {
  it('returns an async function typed after try', () => {
    const { tcc } = setup();
    const reserve = tcc.compensable('stock.reserve', {
      try: async (order: Order, quantity: number) => `${order.id}x${quantity}`,
      confirm: noop,
      cancel: noop,
    });
    expectTypeOf(reserve).toEqualTypeOf<(order: Order, quantity: number) => Promise<string>>();
    const count = tcc.compensable('stock.count', { try: () => 3, confirm: noop, cancel: noop });
    expectTypeOf(count).toEqualTypeOf<() => Promise<number>>();
    expect(typeof reserve).toBe('function');
  });

  it('confirms with the try arguments (through the codec) when the transaction body returns', async () => {
    const { tcc, log, storage } = setup();
    const received: unknown[][] = [];
    const reserve = tcc.compensable('stock.reserve', {
      try: async (order: Order, quantity: number) => {
        log.push(`try:${order.id}`);
        return quantity * 2;
      },
      confirm: async (...args: [Order, number]) => {
        received.push(args);
        log.push(`confirm:${args[0].id}`);
      },
      cancel: async (order: Order) => {
        log.push(`cancel:${order.id}`);
      },
    });
    const order: Order = { id: 'o1', at: new Date('2024-01-02T03:04:05Z'), items: new Map([['apple', 3]]) };
    expect(await tcc.transaction(() => reserve(order, 4))).toBe(8);
    expect(log).toEqual(['try:o1', 'confirm:o1']);
    expect(received).toEqual([[order, 4]]);
    expect(received[0]![0]).not.toBe(order);
    expect((received[0]![0] as Order).at).toBeInstanceOf(Date);
    const [record] = (await storage.list({})).records;
    expect(record?.status).toBe('CONFIRMED');
    expect(record?.participants).toMatchObject([
      { kind: 'local', target: 'stock.reserve', confirm: 'confirm', cancel: 'cancel', status: 'CONFIRMED' },
    ]);
  });

  it('cancels in reverse order alongside decorated participants when the body throws', async () => {
    const { tcc, log, storage } = setup();
    const capital = tcc.register(new classes.Capital());
    const step = (name: string) =>
      tcc.compensable(name, {
        try: (id: string) => {
          log.push(`try:${name}:${id}`);
        },
        confirm: (id: string) => {
          log.push(`confirm:${name}:${id}`);
        },
        cancel: (id: string) => {
          log.push(`cancel:${name}:${id}`);
        },
      });
    const first = step('first');
    const second = step('second');
    const failure = new Error('payment declined');
    await expect(
      tcc.transaction(async () => {
        await first('a');
        await capital.debit({ id: 'd', amount: 10 });
        await second('b');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(log).toEqual(['try:first:a', 'try:second:b', 'cancel:second:b', 'cancel:first:a']);
    expect(capital.log).toEqual(['try:d', 'cancel:d']);
    expect(capital.balance).toBe(100);
    const [record] = (await storage.list({})).records;
    expect(record?.status).toBe('CANCELLED');
    expect(record?.participants.map((p) => (p.kind === 'local' ? p.target : ''))).toEqual([
      'first',
      'capital.debit',
      'second',
    ]);
  });

  it('treats a synchronous throw in try like a rejection', async () => {
    const { tcc, log } = setup();
    const ok = tcc.compensable('ok', {
      try: () => log.push('try:ok'),
      confirm: () => log.push('confirm:ok'),
      cancel: () => log.push('cancel:ok'),
    });
    const bad = tcc.compensable('bad', {
      try: () => {
        log.push('try:bad');
        throw new TypeError('sync');
      },
      confirm: () => log.push('confirm:bad'),
      cancel: () => log.push('cancel:bad'),
    });
    await expect(
      tcc.transaction(async () => {
        await ok();
        await bad().catch(() => {});
      }),
    ).rejects.toThrow('sync');
    expect(log).toEqual(['try:ok', 'try:bad', 'cancel:bad', 'cancel:ok']);
  });

  it('begins and confirms its own transaction when called outside one', async () => {
    const { tcc, log, storage } = setup();
    const step = tcc.compensable('step', {
      try: async () => {
        log.push('try');
        return tcc.current()?.participantId;
      },
      confirm: () => log.push('confirm'),
      cancel: () => log.push('cancel'),
    });
    expect(await step()).toBe('p1');
    expect(log).toEqual(['try', 'confirm']);
    expect((await storage.list({})).records.map((r) => r.status)).toEqual(['CONFIRMED']);
  });

  it('honours the propagation given in its spec', async () => {
    const { tcc, log, storage } = setup();
    const step = tcc.compensable('step', {
      propagation: 'MANDATORY',
      try: () => log.push('try'),
      confirm: () => log.push('confirm'),
      cancel: () => log.push('cancel'),
    });
    await expect(step()).rejects.toBeInstanceOf(TransactionRequiredError);
    expect(log).toEqual([]);
    expect((await storage.list({})).records).toEqual([]);
  });

  it('refuses invalid names, naming them', () => {
    const { tcc } = setup();
    for (const name of [
      '',
      'has space',
      '.dot',
      ':colon',
      '-dash',
      'x'.repeat(129),
      'slash/y',
      7 as unknown as string,
    ]) {
      const error = thrown(() => tcc.compensable(name, { try: noop, confirm: noop, cancel: noop }));
      expect(error, String(name)).toBeInstanceOf(InvalidOptionError);
      expect(error.code).toBe('TCC_INVALID_OPTION');
      expect(error.message).toContain('tcc.compensable');
      expect(error.message).toContain(typeof name === 'string' ? JSON.stringify(name) : String(name));
    }
    for (const name of ['a', 'x'.repeat(128), 'stock.reserve', 'a_b:c-d.e', '0']) {
      expect(() => tcc.compensable(name, { try: noop, confirm: noop, cancel: noop }), name).not.toThrow();
    }
  });

  it('refuses a name that is taken, by a function or by a decorated participant, and keeps the first', async () => {
    const { tcc, log } = setup();
    const first = tcc.compensable('stock', { try: () => log.push('first'), confirm: noop, cancel: noop });
    const again = thrown(() =>
      tcc.compensable('stock', { try: () => log.push('second'), confirm: noop, cancel: noop }),
    );
    expect(again).toBeInstanceOf(DuplicateParticipantError);
    expect(again.code).toBe('TCC_DUPLICATE_PARTICIPANT');
    expect((again as DuplicateParticipantError).participant).toBe('stock');

    tcc.register(new classes.Capital());
    // Participant names and action names share one namespace.
    for (const name of ['capital', 'capital.debit']) {
      expect(thrown(() => tcc.compensable(name, { try: noop, confirm: noop, cancel: noop })).code, name).toBe(
        'TCC_DUPLICATE_PARTICIPANT',
      );
    }
    expect(thrown(() => tcc.register(new classes.Unnamed(), { name: 'stock' })).code).toBe(
      'TCC_DUPLICATE_PARTICIPANT',
    );

    await first();
    expect(log).toEqual(['first']);
  });

  it('refuses a spec whose try, confirm or cancel is not a function, naming the key, and registers nothing', async () => {
    const { tcc } = setup();
    for (const key of ['try', 'confirm', 'cancel'] as const) {
      for (const bad of [undefined, 'confirmIt', { call: noop }]) {
        const spec = { try: noop, confirm: noop, cancel: noop, [key]: bad } as never;
        const error = thrown(() => tcc.compensable('step', spec));
        expect(error, `${key}: ${String(bad)}`).toBeInstanceOf(InvalidParticipantError);
        expect(error.code).toBe('TCC_INVALID_PARTICIPANT');
        expect(error.message).toContain(`${key} must be a function`);
        expect(error.message).toContain('step');
      }
    }
    for (const spec of [null, undefined, 'spec']) {
      const error = thrown(() => tcc.compensable('step', spec as never));
      expect(error.code).toBe('TCC_INVALID_PARTICIPANT');
      expect(error.message).toContain('{ try, confirm, cancel }');
    }
    const badOptions = thrown(() =>
      tcc.compensable('step', { try: noop, confirm: noop, cancel: noop, propagation: 'SOMETIMES' as never }),
    );
    expect(badOptions.code).toBe('TCC_INVALID_OPTION');
    expect(badOptions.message).toContain('"SOMETIMES"');
    // None of the refused specs took the name.
    const step = tcc.compensable('step', { try: async () => 'ok', confirm: noop, cancel: noop });
    expect(await step()).toBe('ok');
  });
});
