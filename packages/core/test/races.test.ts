import {
  MemoryStorage,
  OptimisticLockError,
  Tcc,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { describe, expect, it } from 'vitest';
import { Ledger, registerShop } from './support/shop.js';
import { eventually, manualClock, passTimeWhileRenewed, sleep } from './support/waits.js';

/** A store whose next matching update is applied and then reported as failed (or not applied). */
class FlakyStorage extends CountingStorage {
  failNext: { status: string; applied: boolean } | undefined;

  override async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    const fail = this.failNext;
    if (fail !== undefined && record.status === fail.status) {
      this.failNext = undefined;
      if (fail.applied) await this.inner.update(record, expectedVersion);
      throw new Error('ETIMEDOUT');
    }
    return super.update(record, expectedVersion);
  }
}

describe('a try the body did not await', () => {
  it('is waited for before the outcome, and its failure cancels the transaction', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    const calls: string[] = [];
    const step = tcc.compensable('slow', {
      try: async () => {
        calls.push('try-start');
        await sleep(5);
        calls.push('try-end');
        throw new Error('slow try failed');
      },
      confirm: async () => {
        calls.push('confirm');
      },
      cancel: async () => {
        calls.push('cancel');
      },
    });
    let floating: Promise<unknown> | undefined;
    const outcome = tcc.transaction(async () => {
      floating = step().catch(() => {});
      return 'ok';
    });
    await expect(outcome).rejects.toThrow('slow try failed');
    await floating;
    expect(calls).toEqual(['try-start', 'try-end', 'cancel']);
    expect(await storage.count({})).toBe(0);
  });
});

describe('the commit point', () => {
  it('goes on to confirm when the CONFIRMING write landed but its reply was lost', async () => {
    const storage = new FlakyStorage(new MemoryStorage());
    const tcc = new Tcc({ domain: 'order', storage });
    const ledger = new Ledger({ alice: 100 });
    const capital = registerShop(tcc, ledger);
    storage.failNext = { status: 'CONFIRMING', applied: true };
    await tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 }));
    expect(ledger.calls).toEqual(['try:a', 'confirm:a']);
    expect(await storage.count({})).toBe(0);
  });

  it('cancels, with CommitFailedError, when the CONFIRMING write did not land', async () => {
    const storage = new FlakyStorage(new MemoryStorage());
    const tcc = new Tcc({ domain: 'order', storage });
    const ledger = new Ledger({ alice: 100 });
    const capital = registerShop(tcc, ledger);
    storage.failNext = { status: 'CONFIRMING', applied: false };
    const outcome = tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 }));
    await expect(outcome).rejects.toMatchObject({
      code: 'TCC_COMMIT_FAILED',
      cause: { message: 'ETIMEDOUT' },
    });
    expect(ledger.calls).toEqual(['try:a', 'cancel:a']);
    expect(ledger.balances.get('alice')).toBe(100);
    expect(await storage.count({})).toBe(0);
  });
});

describe('the claim on a record being confirmed', () => {
  it('keeps recovery from driving a confirm that is still running: busy, naming the holder', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    let confirms = 0;
    let duringConfirm: Promise<unknown> | undefined;
    const step = tcc.compensable('slow-confirm', {
      try: async () => {},
      confirm: async () => {
        confirms++;
        const [record] = (await storage.list({})).records;
        duringConfirm = tcc.recover(record!.xid);
        await sleep(20);
      },
      cancel: async () => {},
    });
    await tcc.transaction(() => step());
    expect(await duringConfirm).toMatchObject({
      outcome: 'busy',
      status: 'CONFIRMING',
      error: { code: 'TCC_BUSY', owner: expect.stringContaining(`/${process.pid}/`) },
    });
    expect(confirms).toBe(1);
    expect(await storage.count({})).toBe(0);
  });

  it('is renewed on a timer while one participant runs longer than the claim, so recovery stays out', async () => {
    const storage = new CountingStorage(new MemoryStorage());
    const clock = manualClock();
    const tcc = new Tcc({ domain: 'order', storage, clock, recovery: { recoverAfterMs: 300 } });
    const seen: string[] = [];
    const claimUntil = async () => (await storage.list({})).records[0]?.claim?.until ?? 0;
    const long = tcc.compensable('long', {
      try: async () => {},
      confirm: async () => {
        // Time passes three claims' worth while this one confirm runs; at each step the claim
        // must have been renewed (by the timer, not by a write between participants) before
        // the clock moves on, or it would lapse.
        await passTimeWhileRenewed(clock, claimUntil);
        const [record] = (await storage.list({})).records;
        seen.push((await tcc.recover(record!.xid)).outcome);
      },
      cancel: async () => {},
    });
    await tcc.transaction(() => long());
    expect(seen).toEqual(['busy']);
    expect(storage.log[0]).toBe('create TRYING');
    expect(storage.log.filter((w) => w === 'update CONFIRMING').length).toBeGreaterThanOrEqual(10);
    expect(storage.log.at(-1)).toBe('remove');
  });

  it('stops a driver whose claim was taken over, without writing over the new owner', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const tcc = new Tcc({ domain: 'order', storage, clock, recovery: { recoverAfterMs: 100 } });
    const calls: string[] = [];
    const first = tcc.compensable('first', {
      try: async () => {},
      confirm: async () => {
        calls.push('confirm:first');
        // Another process claims the record meanwhile (an operator's forced retry).
        const [record] = (await storage.list({})).records;
        const claimed: TransactionRecord = { ...record!, retries: 1, version: record!.version + 1 };
        await storage.update(claimed, record!.version);
        clock.t += 120;
      },
      cancel: async () => {},
    });
    const second = tcc.compensable('second', {
      try: async () => {},
      confirm: async () => {
        calls.push('confirm:second');
      },
      cancel: async () => {},
    });
    await expect(
      tcc.transaction(async () => {
        await first();
        await second();
      }),
    ).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED', cause: { code: 'TCC_LEASE_LOST' } });
    expect(calls).toEqual(['confirm:first']);
    const [left] = (await storage.list({})).records;
    expect(left?.retries).toBe(1);
    expect(left?.lastError).toBeUndefined();
  });
});

describe('parking', () => {
  it('parks at the claim once maxRetries attempts were counted, even if none of them wrote its failure', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage, recovery: { maxRetries: 2, recoverAfterMs: 0 } });
    let attempts = 0;
    const step = tcc.compensable('stuck', {
      try: async () => {},
      // The first confirm throws; every later one never returns, like a worker that died.
      confirm: () => (attempts++ === 0 ? Promise.reject(new Error('down')) : new Promise(() => {})),
      cancel: async () => {},
    });
    await expect(tcc.transaction(() => step())).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
    const [record] = (await storage.list({})).records;
    for (let i = 0; i < 2; i++) {
      void tcc.recover(record!.xid);
      // Counted by the attempt's first write, before its confirm hangs.
      await eventually(async () => (await storage.get(record!.xid))?.retries === i + 1);
    }
    expect((await storage.get(record!.xid))?.retries).toBe(2);
    expect(await tcc.recover(record!.xid)).toMatchObject({ outcome: 'parked' });
    const parked = await storage.get(record!.xid);
    expect(parked?.parkedAt).toBeTypeOf('number');
    expect(parked?.retries).toBe(2);
    expect(parked?.lastError).toContain('down');
    expect(attempts).toBe(3);
  });
});

describe('joining', () => {
  it('refuses a participant once the deadline has passed, without running its try', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const tcc = new Tcc({ domain: 'order', storage, clock, timeoutMs: 100 });
    const ledger = new Ledger({ alice: 100 });
    const capital = registerShop(tcc, ledger);
    const outcome = tcc.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 1 });
      clock.t += 101;
      await capital.debit({ id: 'b', from: 'alice', amount: 1 });
    });
    await expect(outcome).rejects.toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    expect(ledger.calls).toEqual(['try:a', 'cancel:a']);
  });

  it('reports a record taken over by recovery as a passed deadline, not a raw lock error', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const tcc = new Tcc({ domain: 'order', storage, clock, timeoutMs: 1_000 });
    const ledger = new Ledger({ alice: 100 });
    const capital = registerShop(tcc, ledger);
    const outcome = tcc.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 1 });
      clock.t += 500;
      const [record] = (await storage.list({})).records;
      // An operator cancels it by hand meanwhile.
      await storage.update(
        { ...record!, status: 'CANCELLING', version: record!.version + 1 },
        record!.version,
      );
      await capital.debit({ id: 'b', from: 'alice', amount: 1 });
    });
    const error = await outcome.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    expect((error as Error).cause).toBeInstanceOf(OptimisticLockError);
    expect(ledger.calls).toEqual(['try:a']);
  });

  it('gives participants unique ids even after an enlist write failed', async () => {
    let failCreate = true;
    const inner = new MemoryStorage();
    const storage: TransactionStorage = Object.assign(Object.create(inner) as MemoryStorage, {
      create: (record: TransactionRecord) => {
        if (failCreate) {
          failCreate = false;
          return Promise.reject(new Error('store hiccup'));
        }
        return inner.create(record);
      },
    });
    const tcc = new Tcc({ domain: 'order', storage, retainMs: 60_000 });
    const step = tcc.compensable('step', {
      try: async () => {},
      confirm: async () => {},
      cancel: async () => {},
    });
    const outcome = tcc.transaction(async () => {
      await Promise.all([step().catch(() => {}), step().catch(() => {})]);
      await step();
    });
    // The failed enlist dooms the transaction; what matters here is the record it left.
    await expect(outcome).rejects.toThrow('store hiccup');
    const [record] = (await inner.list({ status: 'CANCELLED' })).records;
    expect(record!.participants).toHaveLength(2);
    const ids = record!.participants.map((p) => p.id);
    expect(new Set(ids).size).toBe(2);
  });
});
