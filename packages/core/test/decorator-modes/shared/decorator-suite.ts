import {
  type CompensableOptions,
  DuplicateParticipantError,
  InvalidOptionError,
  InvalidParticipantError,
  MemoryStorage,
  NotRegisteredError,
  Tcc,
  TransactionRequiredError,
} from '@tcc/core';
import { describe, expect, it } from 'vitest';
import type * as LegacyClasses from '../legacy/classes.js';

/** legacy/classes.ts and standard/classes.ts export the same classes, compiled two ways. */
export type DecoratedClasses = typeof LegacyClasses;
export type DecoratorMode = 'legacy' | 'standard';

function setup() {
  const storage = new MemoryStorage();
  // Finished roots are kept as CONFIRMED/CANCELLED tombstones so that tests can read them.
  const tcc = new Tcc({ domain: 'shop', storage, retainMs: 60_000 });
  return { storage, tcc };
}

async function records(storage: MemoryStorage) {
  return (await storage.list({})).records;
}

async function summary(storage: MemoryStorage) {
  return (await records(storage)).map((r) => ({
    status: r.status,
    participants: r.participants.map((p) =>
      p.kind === 'local'
        ? { target: p.target, confirm: p.confirm, cancel: p.cancel, status: p.status }
        : { endpoint: p.endpoint, status: p.status },
    ),
  }));
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

/** The symbol standard decorators store class metadata under (esbuild's fallback on Node 20). */
const METADATA = (Symbol as { metadata?: symbol }).metadata ?? Symbol.for('Symbol.metadata');

export function decoratorSuite(mode: DecoratorMode, classes: DecoratedClasses): void {
  const {
    Bare,
    Base,
    Capital,
    CompensableConfirm,
    Inherit,
    Misspelt,
    Override,
    OverrideCallingSuper,
    OverrideConfirm,
    Probe,
    Unnamed,
    defineCompensable,
    defineParticipant,
    defineStaticCompensable,
    probeCalls,
  } = classes;

  describe(`compiled with ${mode} decorators`, () => {
    it(`calls decorators the ${mode} way`, () => {
      expect(probeCalls).toHaveLength(1);
      const call = probeCalls[0]!;
      if (mode === 'legacy') {
        // experimentalDecorators: (prototype, key, descriptor)
        expect(call).toHaveLength(3);
        expect(call[0]).toBe(Probe.prototype);
        expect(call[1]).toBe('method');
        expect((call[2] as PropertyDescriptor).value).toBe(Probe.prototype.method);
      } else {
        // standard decorators: (method, context)
        expect(call).toHaveLength(2);
        expect(call[0]).toBe(Probe.prototype.method);
        expect(call[1]).toMatchObject({ kind: 'method', name: 'method', static: false, private: false });
        expect(typeof (call[1] as { metadata?: unknown }).metadata).toBe('object');
      }
      // Only standard decorators give a decorated class a metadata object.
      expect(Object.hasOwn(Probe, METADATA)).toBe(mode === 'standard');
    });
  });

  describe(`@Compensable under ${mode} decorators`, () => {
    it('registers the instance under its @Participant name and returns it', async () => {
      const { tcc, storage } = setup();
      const capital = new Capital();
      expect(tcc.register(capital)).toBe(capital);
      await tcc.transaction(() => capital.debit({ id: 't1', amount: 10 }));
      expect(await summary(storage)).toEqual([
        {
          status: 'CONFIRMED',
          participants: [
            { target: 'capital.debit', confirm: 'confirmDebit', cancel: 'cancelDebit', status: 'CONFIRMED' },
          ],
        },
      ]);
    });

    it('confirms every try with its arguments when the transaction body returns', async () => {
      const { tcc, storage } = setup();
      const capital = tcc.register(new Capital());
      const result = await tcc.transaction(async () => {
        const left = await capital.debit({ id: 't1', amount: 30 });
        await capital.note('hello');
        return left + (await capital.debit({ id: 't2', amount: 20 }));
      });
      expect(result).toBe(70 + 50);
      expect(capital.log).toEqual([
        'try:t1',
        'try:note:hello',
        'try:t2',
        'confirm:t1',
        'confirm:note:hello',
        'confirm:t2',
      ]);
      expect({ balance: capital.balance, frozen: capital.frozen, spent: capital.spent }).toEqual({
        balance: 50,
        frozen: 0,
        spent: 50,
      });
      const [record] = await summary(storage);
      expect(record?.status).toBe('CONFIRMED');
      expect(record?.participants.map((p) => p.status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
    });

    it('cancels every try in reverse order when the body throws, and rethrows', async () => {
      const { tcc, storage } = setup();
      const capital = tcc.register(new Capital());
      const failure = new Error('out of stock');
      await expect(
        tcc.transaction(async () => {
          await capital.debit({ id: 't1', amount: 30 });
          await capital.note('hi');
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(capital.log).toEqual(['try:t1', 'try:note:hi', 'cancel:note:hi', 'cancel:t1']);
      expect({ balance: capital.balance, frozen: capital.frozen, spent: capital.spent }).toEqual({
        balance: 100,
        frozen: 0,
        spent: 0,
      });
      expect((await summary(storage)).map((r) => r.status)).toEqual(['CANCELLED']);
    });

    it('cancels when a try throws, even if the body catches the error', async () => {
      const { tcc } = setup();
      const capital = tcc.register(new Capital());
      await expect(
        tcc.transaction(async () => {
          await capital.debit({ id: 't1', amount: 30 });
          await capital.debit({ id: 't2', amount: 500 }).catch(() => {});
        }),
      ).rejects.toBeInstanceOf(RangeError);
      expect(capital.log).toEqual(['try:t1', 'try:t2', 'cancel:t2', 'cancel:t1']);
      expect(capital.balance).toBe(100);
    });

    it('begins and confirms its own transaction when called outside one', async () => {
      const { tcc, storage } = setup();
      const capital = tcc.register(new Capital());
      expect(await capital.debit({ id: 't1', amount: 5 })).toBe(95);
      expect(capital.log).toEqual(['try:t1', 'confirm:t1']);
      expect((await summary(storage)).map((r) => r.status)).toEqual(['CONFIRMED']);
    });

    it('honours the propagation given in its options', async () => {
      const { tcc, storage } = setup();
      const capital = tcc.register(new Capital());
      const error = await capital.note('alone').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransactionRequiredError);
      expect(error).toMatchObject({ code: 'TCC_TRANSACTION_REQUIRED' });
      expect(capital.log).toEqual([]);
      expect(await records(storage)).toEqual([]);
    });

    it('names a participant without @Participant after its class, unless register is given a name', async () => {
      const { tcc, storage } = setup();
      const a = tcc.register(new Unnamed());
      const b = tcc.register(new Unnamed(), { name: 'second' });
      const c = tcc.register(new Capital(), { name: 'renamed' });
      await tcc.transaction(async () => {
        await a.step(1);
        await b.step(2);
        await c.debit({ id: 't', amount: 1 });
      });
      const [record] = await summary(storage);
      expect(record?.participants.map((p) => p.target)).toEqual([
        'Unnamed.step',
        'second.step',
        'renamed.debit',
      ]);
      // Each instance's own confirm ran, with its own arguments.
      expect(a.log).toEqual(['try:1', 'confirm:1']);
      expect(b.log).toEqual(['try:2', 'confirm:2']);
      expect(c.log).toEqual(['try:t', 'confirm:t']);
    });

    it('refuses a misspelt confirmMethod at register time, naming the class and the method', () => {
      const { tcc } = setup();
      const error = thrown(() => tcc.register(new Misspelt()));
      expect(error).toBeInstanceOf(InvalidParticipantError);
      expect(error.code).toBe('TCC_INVALID_PARTICIPANT');
      expect(error.message).toContain('Misspelt.pay');
      expect(error.message).toContain('"confirmPayy"');
      // Nothing was registered: the name is still free.
      expect(() => tcc.register(new Unnamed(), { name: 'Misspelt' })).not.toThrow();
    });

    it('refuses a confirmMethod that is itself @Compensable', () => {
      const { tcc } = setup();
      const error = thrown(() => tcc.register(new CompensableConfirm()));
      expect(error.code).toBe('TCC_INVALID_PARTICIPANT');
      expect(error.message).toContain('CompensableConfirm.pay');
      expect(error.message).toContain('"confirmPay" is itself @Compensable');
    });

    it('refuses a call on an instance that was never registered, and writes nothing', async () => {
      const { tcc, storage } = setup();
      tcc.register(new Capital());
      const stray = new Capital();
      let call: Promise<number> | undefined;
      expect(() => {
        call = stray.debit({ id: 't', amount: 1 });
      }).not.toThrow();
      const error = await call!.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotRegisteredError);
      expect(error).toMatchObject({ code: 'TCC_NOT_REGISTERED' });
      expect((error as Error).message).toContain('Capital.debit');
      expect((error as Error).message).toContain('tcc.register');
      expect(stray.log).toEqual([]);
      expect(await records(storage)).toEqual([]);
    });

    it('refuses to register the same instance twice, in one Tcc or in two', () => {
      const { tcc } = setup();
      const capital = tcc.register(new Capital());
      const again = thrown(() => tcc.register(capital));
      expect(again).toBeInstanceOf(DuplicateParticipantError);
      expect(again.code).toBe('TCC_DUPLICATE_PARTICIPANT');
      expect((again as DuplicateParticipantError).participant).toBe('capital');
      expect(thrown(() => tcc.register(capital, { name: 'other' })).code).toBe('TCC_DUPLICATE_PARTICIPANT');
      const elsewhere = new Tcc({ domain: 'elsewhere', storage: new MemoryStorage() });
      expect(thrown(() => elsewhere.register(capital)).code).toBe('TCC_DUPLICATE_PARTICIPANT');
    });

    it('refuses two instances under one name, leaving the second unregistered', async () => {
      const { tcc } = setup();
      const first = tcc.register(new Capital());
      const second = new Capital();
      const error = thrown(() => tcc.register(second));
      expect(error).toBeInstanceOf(DuplicateParticipantError);
      expect(error.code).toBe('TCC_DUPLICATE_PARTICIPANT');
      expect(error.message).toContain('"capital"');
      await expect(second.debit({ id: 't', amount: 1 })).rejects.toMatchObject({
        code: 'TCC_NOT_REGISTERED',
      });
      // The first is still the one registered, and works.
      await tcc.transaction(() => first.debit({ id: 't', amount: 1 }));
      expect(first.log).toEqual(['try:t', 'confirm:t']);
      // Under another name the second instance can be registered.
      tcc.register(second, { name: 'capital2' });
      await second.debit({ id: 'u', amount: 2 });
      expect(second.log).toEqual(['try:u', 'confirm:u']);
    });

    it('refuses a class without any @Compensable method', () => {
      const { tcc } = setup();
      const error = thrown(() => tcc.register(new Bare()));
      expect(error).toBeInstanceOf(InvalidParticipantError);
      expect(error.code).toBe('TCC_INVALID_PARTICIPANT');
      expect(error.message).toContain('Bare has no @Compensable method');
    });

    it("runs a subclass's overriding compensable method with its own confirm and cancel", async () => {
      const { tcc, storage } = setup();
      const sub = tcc.register(new Override());
      expect(await tcc.transaction(() => sub.pay('a'))).toBe('override');
      await expect(
        tcc.transaction(async () => {
          await sub.pay('b');
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      expect(sub.log).toEqual([
        'override.try:a',
        'override.confirm:a',
        'override.try:b',
        'override.cancel:b',
      ]);
      // Roots begun in the same millisecond may be listed in either order.
      const participants = (await summary(storage)).flatMap((r) => r.participants);
      expect(participants.sort((a, b) => a.status.localeCompare(b.status))).toEqual([
        { target: 'Override.pay', confirm: 'confirmOverride', cancel: 'cancelOverride', status: 'CANCELLED' },
        { target: 'Override.pay', confirm: 'confirmOverride', cancel: 'cancelOverride', status: 'CONFIRMED' },
      ]);
      // The parent class is unaffected.
      const base = tcc.register(new Base());
      expect(await base.pay('c')).toBe('base');
      expect(base.log).toEqual(['base.try:c', 'base.confirm:c']);
    });

    it('inherits a compensable method, and uses an overriding confirm method', async () => {
      const { tcc } = setup();
      const inherit = tcc.register(new Inherit());
      const overrideConfirm = tcc.register(new OverrideConfirm());
      await tcc.transaction(async () => {
        await inherit.pay('a');
        await overrideConfirm.pay('b');
      });
      expect(inherit.log).toEqual(['base.try:a', 'base.confirm:a']);
      expect(overrideConfirm.log).toEqual(['base.try:b', 'sub.confirm:b']);
    });

    it("runs the parent's try once when an overriding compensable method calls super", async () => {
      const { tcc } = setup();
      const sub = tcc.register(new OverrideCallingSuper());
      const result = await tcc.transaction(() => sub.pay('a'));
      expect(result).toBe('override+base');
      expect(sub.log.filter((line) => line.includes('.try:'))).toEqual(['override.try:a', 'base.try:a']);
      expect(sub.log).toContain('override.confirm:a');
    });

    it('refuses an invalid @Participant name when the class is defined', () => {
      for (const name of ['', 'has space', '.dot', '-dash', 'x'.repeat(129), 42 as unknown as string]) {
        const error = thrown(() => defineParticipant(name));
        expect(error, String(name)).toBeInstanceOf(InvalidOptionError);
        expect(error.code).toBe('TCC_INVALID_OPTION');
        expect(error.message).toContain('@Participant');
        expect(error.message).toContain(typeof name === 'string' ? JSON.stringify(name) : String(name));
      }
      expect(() => defineParticipant('ok.name_1:x-y')).not.toThrow();
    });

    it('refuses bad @Compensable options when the class is defined, naming the value', () => {
      const cases: [Record<string, unknown>, string[]][] = [
        [{ confirmMethod: 'confirm' }, ['cancelMethod', 'undefined']],
        [{ cancelMethod: 'cancel' }, ['confirmMethod', 'undefined']],
        [{ confirmMethod: '', cancelMethod: 'cancel' }, ['confirmMethod']],
        [{ confirmMethod: 'confirm', cancelMethod: 42 }, ['cancelMethod', '42']],
        [
          { confirmMethod: 'confirm', cancelMethod: 'cancel', propagation: 'SOMETIMES' },
          ['propagation', '"SOMETIMES"'],
        ],
        [{ confirmMethod: 'confirm', cancelMethod: 'cancel', timeoutMs: -1 }, ['timeoutMs', '-1']],
        [{ confirmMethod: 'confirm', cancelMethod: 'cancel', timeoutMs: 1.5 }, ['timeoutMs', '1.5']],
        [
          { confirmMethod: 'confirm', cancelMethod: 'cancel', asyncConfirm: 'yes' },
          ['asyncConfirm', '"yes"'],
        ],
        [{ confirmMethod: 'confirm', cancelMethod: 'cancel', delayCancelOn: [42] }, ['delayCancelOn']],
      ];
      for (const [options, words] of cases) {
        const error = thrown(() => defineCompensable(options as unknown as CompensableOptions));
        expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidOptionError);
        expect(error.code).toBe('TCC_INVALID_OPTION');
        expect(error.message).toContain('@Compensable');
        for (const word of words) expect(error.message, JSON.stringify(options)).toContain(word);
      }
      const missing = thrown(() => defineCompensable(undefined as unknown as CompensableOptions));
      expect(missing.code).toBe('TCC_INVALID_OPTION');
      expect(() =>
        defineCompensable({
          confirmMethod: 'confirm',
          cancelMethod: 'cancel',
          propagation: 'SUPPORTS',
          timeoutMs: 1,
        }),
      ).not.toThrow();
    });

    it('refuses @Compensable on a static method when the class is defined', () => {
      const error = thrown(() => defineStaticCompensable());
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error.code).toBe('TCC_INVALID_OPTION');
      expect(error.message).toContain('instance method');
    });
  });
}
