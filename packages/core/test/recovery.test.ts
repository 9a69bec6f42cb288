import { MemoryStorage, Tcc, type TransactionRecord } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { RECOVER_SCANNED, type RecoverScanned } from '../src/recovery/scanned.js';
import { CrashingStorage, SimulatedCrash } from './support/crashing-storage.js';
import { Ledger, registerShop } from './support/shop.js';

/** The clock of a process started once a crashed one's claim (30 s by default) has lapsed. */
const afterTheClaim = { now: () => Date.now() + 31_000 };

/** A clock the test moves by hand, so deadlines pass without waiting. */
function manualClock(start = Date.now()) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

/** Polls `condition` until it holds; fails after a bound no healthy run comes near. */
async function eventually(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > 20_000) throw new Error(`${what}: not within 20 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function only(storage: MemoryStorage): Promise<TransactionRecord> {
  const { records } = await storage.list({});
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe('recovery after a crash between the commit point and confirm', () => {
  it('leaves the record CONFIRMING, and a new Tcc on the same store confirms every participant once', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const crashing = new CrashingStorage(storage, (op, r) => op === 'update' && r?.status === 'CONFIRMING');
    const before = new Tcc({ domain: 'order', storage: crashing });
    const capital = registerShop(before, ledger);

    const outcome = before.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 10 });
      await capital.debit({ id: 'b', from: 'alice', amount: 15 });
    });
    // The process cannot tell whether its commit point landed: it says so, and stops.
    await expect(outcome).rejects.toMatchObject({
      code: 'TCC_OUTCOME_UNKNOWN',
      cause: expect.any(SimulatedCrash),
    });
    expect(ledger.calls).toEqual(['try:a', 'try:b']);

    const left = await only(storage);
    expect(left.status).toBe('CONFIRMING');
    expect(left.participants.map((p) => p.status)).toEqual(['TRYING', 'TRYING']);

    // The dead process's claim (taken with its commit point) keeps every other driver out
    // until it lapses.
    const early = new Tcc({ domain: 'order', storage });
    registerShop(early, ledger);
    expect(await early.recover(left.xid)).toMatchObject({ outcome: 'busy', error: { code: 'TCC_BUSY' } });

    // A restarted process, once that claim (recoverAfterMs, 30 s by default) has lapsed.
    const after = new Tcc({ domain: 'order', storage, clock: afterTheClaim });
    registerShop(after, ledger);
    const result = await after.recover(left.xid);
    expect(result).toMatchObject({ xid: left.xid, outcome: 'confirmed' });
    expect(ledger.calls.filter((c) => c.startsWith('confirm'))).toEqual(['confirm:a', 'confirm:b']);
    expect(ledger.balances.get('sink')).toBe(25);
    expect(ledger.total()).toBe(100);
    expect((await storage.list({})).records).toEqual([]);
  });

  it('cancels a root whose process died in its try, once the deadline has passed and its try claim lapsed', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const ledger = new Ledger({ alice: 100 });
    const crashing = new CrashingStorage(storage, (op) => op === 'create');
    const before = new Tcc({ domain: 'order', storage: crashing, clock, timeoutMs: 5_000 });
    const capital = registerShop(before, ledger);
    await expect(
      before.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 })),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    const left = await only(storage);
    expect(left.status).toBe('TRYING');

    const after = new Tcc({ domain: 'order', storage, clock });
    registerShop(after, ledger);
    expect(await after.recover(left.xid)).toMatchObject({ outcome: 'waiting', status: 'TRYING' });
    clock.t += 5_001;
    // Past the deadline, the dead try's claim (recoverAfterMs, 30 s from its write) still holds:
    // recovery cannot tell a dead try from one whose participant is still running.
    expect(await after.recover(left.xid)).toMatchObject({ outcome: 'busy', status: 'TRYING' });
    clock.t = left.claim!.until + 1;
    expect(await after.recover(left.xid)).toMatchObject({ outcome: 'cancelled' });
    // The try never ran, so this cancel was an empty rollback.
    expect(ledger.calls).toEqual(['cancel:a']);
    expect(ledger.total()).toBe(100);
    expect((await storage.list({})).records).toEqual([]);
  });
});

describe('a try that outlives its deadline', () => {
  it('is cancelled by recovery, and the late body gets DeadlineExceededError', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage, clock, timeoutMs: 1_000 });
    const capital = registerShop(tcc, ledger);
    let release!: () => void;
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });

    const outcome = tcc.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 10 });
      await slow;
    });
    await eventually('the participant is enlisted', async () => (await storage.count({})) === 1);
    const record = await only(storage);
    expect(await tcc.recover(record.xid)).toMatchObject({ outcome: 'waiting' });

    clock.t += 1_001;
    // The try's claim, written with its enlist, is only renewed while a participant's try runs:
    // a body stuck elsewhere lets it lapse (recoverAfterMs, 30 s), and recovery takes over.
    expect(await tcc.recover(record.xid)).toMatchObject({ outcome: 'busy' });
    clock.t = record.claim!.until + 1;
    expect(await tcc.recover(record.xid)).toMatchObject({ outcome: 'cancelled' });
    expect(ledger.balances.get('alice')).toBe(100);

    release();
    await expect(outcome).rejects.toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    expect(ledger.calls).toEqual(['try:a', 'cancel:a']);
  });

  it('is cancelled by the root itself when the body returns after the deadline', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage, clock });
    const capital = registerShop(tcc, ledger);
    const outcome = tcc.transaction(
      async () => {
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
        clock.t += 600;
      },
      { timeoutMs: 500 },
    );
    await expect(outcome).rejects.toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    expect(ledger.calls).toEqual(['try:a', 'cancel:a']);
    expect((await storage.list({})).records).toEqual([]);
  });
});

describe('parking', () => {
  it('parks a record after maxRetries failed attempts, with its last error, and stops trying it', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage, recovery: { maxRetries: 3, recoverAfterMs: 0 } });
    const capital = registerShop(tcc, ledger);
    capital.failConfirm = 100;
    await expect(
      tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 })),
    ).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
    const { xid } = await only(storage);

    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) outcomes.push((await tcc.recover(xid)).outcome);
    expect(outcomes).toEqual(['failed', 'failed', 'parked']);

    const parked = await only(storage);
    expect(parked.status).toBe('CONFIRMING');
    expect(parked.retries).toBe(3);
    expect(parked.parkedAt).toBeTypeOf('number');
    expect(parked.lastError).toContain('confirm of a failed on purpose');
    expect(
      (await storage.findStuck({ domain: 'order', dueBefore: Date.now() + 1, limit: 10 })).records,
    ).toEqual([]);
    expect(await tcc.recover(xid)).toMatchObject({ outcome: 'parked' });
    expect(ledger.calls).not.toContain('confirm:a');

    // The operator fixes the cause and forces a retry: it is unparked and finished.
    capital.failConfirm = 0;
    expect(await tcc.recover(xid, { force: true })).toMatchObject({ outcome: 'confirmed' });
    expect(ledger.balances.get('sink')).toBe(10);
    expect((await storage.list({})).records).toEqual([]);
  });

  it('counts attempts by compare-and-set: of two concurrent recoveries one finds the record busy', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
    const capital = registerShop(tcc, ledger);
    capital.failConfirm = 1;
    await expect(
      tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 })),
    ).rejects.toThrow();
    const { xid } = await only(storage);
    const results = await Promise.all([tcc.recover(xid), tcc.recover(xid)]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['busy', 'confirmed']);
    expect(ledger.calls.filter((c) => c === 'confirm:a')).toHaveLength(1);
  });
});

describe('startRecovery', () => {
  it('finds and finishes stuck records in the background, and stop() ends it', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100, bob: 100 });
    const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
    const capital = registerShop(tcc, ledger);
    capital.failConfirm = 2;
    for (const from of ['alice', 'bob']) {
      await expect(
        tcc.transaction(() => capital.debit({ id: from, from, amount: 10 })),
      ).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
    }
    expect((await storage.list({})).records).toHaveLength(2);

    const seen: string[] = [];
    tcc.startRecovery({ intervalMs: 20, onResult: (r) => seen.push(r.outcome) });
    expect(() => tcc.startRecovery()).toThrow(/already running/);
    await eventually('both records finished', async () => (await storage.count({})) === 0);
    await tcc.stop();
    expect(await storage.count({})).toBe(0);
    expect(seen).toEqual(['confirmed', 'confirmed']);
    expect(ledger.balances.get('sink')).toBe(20);
  });

  it('reports a failing pass to onError and keeps polling', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    const errors: unknown[] = [];
    await storage.close();
    tcc.startRecovery({ intervalMs: 10, onError: (e) => errors.push(e) });
    await eventually('two passes reported', () => errors.length >= 2);
    await tcc.stop();
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toMatchObject({ code: 'TCC_STORAGE' });
  });
});

describe('delayCancelOn, asyncConfirm and asyncCancel', () => {
  class RemoteTimeout extends Error {}

  it('leaves a try that failed with a delayCancelOn error TRYING for recovery to cancel after the deadline', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage, clock });
    const capital = registerShop(tcc, ledger);
    const outcome = tcc.transaction(
      async () => {
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
        throw new RemoteTimeout('the remote try may still be running');
      },
      { timeoutMs: 1_000, delayCancelOn: [RemoteTimeout] },
    );
    await expect(outcome).rejects.toBeInstanceOf(RemoteTimeout);
    expect((await only(storage)).status).toBe('TRYING');
    expect(ledger.calls).toEqual(['try:a']);
    // Past the deadline and the try's claim (recoverAfterMs, 30 s), which is no longer renewed.
    clock.t += 30_001;
    expect(await tcc.recover((await only(storage)).xid)).toMatchObject({ outcome: 'cancelled' });
    expect(ledger.balances.get('alice')).toBe(100);
  });

  it('asyncConfirm returns at the commit point and confirms in the background', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage });
    const capital = registerShop(tcc, ledger);
    let confirmStarted = false;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slowConfirm = tcc.compensable('slow', {
      try: async () => {},
      confirm: async () => {
        confirmStarted = true;
        await held;
      },
      cancel: async () => {},
    });
    await tcc.transaction(
      async () => {
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
        await slowConfirm();
      },
      { asyncConfirm: true },
    );
    // Returned at the commit point, while a confirm is still held in the background.
    expect((await only(storage)).status).toBe('CONFIRMING');
    release();
    await tcc.stop();
    expect(confirmStarted).toBe(true);
    expect(ledger.balances.get('sink')).toBe(10);
    expect(await storage.count({})).toBe(0);
  });

  it('asyncCancel rethrows at once and cancels in the background', async () => {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const tcc = new Tcc({ domain: 'order', storage });
    const capital = registerShop(tcc, ledger);
    const outcome = tcc.transaction(
      async () => {
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
        throw new Error('changed my mind');
      },
      { asyncCancel: true },
    );
    await expect(outcome).rejects.toThrow('changed my mind');
    await tcc.stop();
    expect(ledger.calls).toEqual(['try:a', 'cancel:a']);
    expect(await storage.count({})).toBe(0);
  });
});

describe('recover() on records it should not drive', () => {
  it('answers not-found for an unknown xid, and refuses an empty one', async () => {
    const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage() });
    expect(await tcc.recover('no-such-xid')).toEqual({ xid: 'no-such-xid', outcome: 'not-found' });
    await expect(tcc.recover('')).rejects.toMatchObject({ code: 'TCC_INVALID_OPTION' });
    await expect(tcc.recover(42 as unknown as string)).rejects.toThrow(
      /xid must be a non-empty string, got 42/,
    );
  });

  it('fails with TCC_NOT_REGISTERED when the recovering process lacks a participant, and leaves other domains alone', async () => {
    const storage = new MemoryStorage();
    const before = new Tcc({ domain: 'order', storage });
    const debit = before.compensable('stock.reserve', {
      try: async () => {},
      confirm: async () => {
        throw new Error('down');
      },
      cancel: async () => {},
    });
    await expect(before.transaction(() => debit())).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
    const { xid } = await only(storage);
    const after = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
    const result = await after.recover(xid);
    expect(result.outcome).toBe('failed');
    expect(result.error).toMatchObject({ code: 'TCC_NOT_REGISTERED' });
    expect((await only(storage)).lastError).toContain('"stock.reserve"');
    const foreign = new Tcc({ domain: 'stock', storage });
    expect(await foreign.recover(xid)).toMatchObject({ outcome: 'foreign' });
  });
});

/** The worker's way in (hidden from `Tcc`'s type): an attempt from the record a scan read. */
function recoverScanned(tcc: Tcc, xid: string, record: TransactionRecord) {
  return (tcc as unknown as Record<symbol, RecoverScanned>)[RECOVER_SCANNED]!(xid, record);
}

describe('the scan hand-over: an attempt from the record a scan just read', () => {
  async function leftConfirming() {
    const storage = new MemoryStorage();
    const ledger = new Ledger({ alice: 100 });
    const crashing = new CrashingStorage(storage, (op, r) => op === 'update' && r?.status === 'CONFIRMING');
    const before = new Tcc({ domain: 'order', storage: crashing });
    const capital = registerShop(before, ledger);
    await expect(
      before.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 10 })),
    ).rejects.toMatchObject({ code: 'TCC_OUTCOME_UNKNOWN' });
    const after = new Tcc({ domain: 'order', storage, clock: afterTheClaim });
    registerShop(after, ledger);
    return { storage, ledger, after, left: await only(storage) };
  }

  it('drives it without reading it again, and leaves the caller its copy untouched', async () => {
    const { storage, ledger, after, left } = await leftConfirming();
    const snapshot = structuredClone(left);
    let reads = 0;
    const get = storage.get.bind(storage);
    storage.get = (xid) => {
      reads++;
      return get(xid);
    };
    expect(await recoverScanned(after, left.xid, left)).toMatchObject({ outcome: 'confirmed' });
    expect(reads).toBe(0);
    expect(left).toStrictEqual(snapshot);
    expect(ledger.calls.filter((c) => c.startsWith('confirm'))).toEqual(['confirm:a']);
  });

  it('reads the record afresh when the copy is stale, and drives it once', async () => {
    const { storage, ledger, after, left } = await leftConfirming();
    const stale = structuredClone(left);
    // Another attempt moved the record on since the scan (it failed and was counted).
    await storage.update({ ...left, retries: 1, version: left.version + 1 }, left.version);
    expect(await recoverScanned(after, left.xid, stale)).toMatchObject({ outcome: 'confirmed' });
    expect(ledger.calls.filter((c) => c.startsWith('confirm'))).toEqual(['confirm:a']);
    expect(await storage.count({})).toBe(0);
  });

  it('refuses a record of another xid, naming both, and changes nothing', async () => {
    const { storage, after, left } = await leftConfirming();
    await expect(recoverScanned(after, 'other', left)).rejects.toThrow(
      new RegExp(`the scanned record must be the record of other, got "${left.xid}"`),
    );
    expect(await storage.get(left.xid)).toStrictEqual(left);
  });
});

describe('tcc.recoveryOptions', () => {
  it('shows the tuning in force, defaults filled in, and cannot be changed', () => {
    const tcc = new Tcc({ domain: 'd', storage: new MemoryStorage(), recovery: { maxRetries: 3 } });
    expect(tcc.recoveryOptions).toMatchObject({ maxRetries: 3, recoverAfterMs: 30_000 });
    expect(() => {
      (tcc.recoveryOptions as { maxRetries: number }).maxRetries = 9;
    }).toThrow(TypeError);
  });
});
