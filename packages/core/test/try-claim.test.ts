import { MemoryStorage, Tcc } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { describe, expect, it } from 'vitest';
import { eventually, manualClock, passTimeWhileRenewed, sleep } from './support/waits.js';

// A try holds a claim on its record (written with the create, renewed while a participant's
// try runs, released by the write that ends the try), so that no other driver cancels a
// transaction whose try is still running: the cancel would run first and the try's effect
// would stay. These cases are the root's; `http/http-try-claim.test.ts` has the branch's.

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Stock reserved by a try, taken by confirm, given back by cancel: what stays reserved leaks. */
class Stock {
  reserved = 0;
  shipped = 0;
  readonly calls: string[] = [];
}

function register(tcc: Tcc, stock: Stock, hold: Promise<void>) {
  return tcc.compensable('stock.reserve', {
    try: async (n: number) => {
      await hold;
      stock.calls.push('try');
      stock.reserved += n;
    },
    confirm: async (n: number) => {
      stock.calls.push('confirm');
      stock.reserved -= n;
      stock.shipped += n;
    },
    cancel: async (n: number) => {
      stock.calls.push('cancel');
      // An empty rollback (the try never ran) finds nothing reserved.
      if (stock.calls.includes('try')) stock.reserved -= n;
    },
  });
}

describe("a root's try that runs past its deadline", () => {
  it('keeps recovery in another process out while its participant runs; the root then cancels it itself', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const stock = new Stock();
    const held = gate();
    const root = new Tcc({ domain: 'order', storage, clock, timeoutMs: 1_000 });
    const recovery = new Tcc({ domain: 'order', storage, clock });
    const reserve = register(root, stock, held.opened);
    register(recovery, stock, held.opened);

    const outcome = root.transaction(() => reserve(2));
    await eventually(async () => (await storage.count({})) === 1);
    const [during] = (await storage.list({})).records;
    expect(during).toMatchObject({ status: 'TRYING', claim: { owner: expect.any(String) } });

    clock.t += 1_001;
    expect(await recovery.recover(during!.xid)).toMatchObject({
      outcome: 'busy',
      status: 'TRYING',
      error: { code: 'TCC_BUSY' },
    });
    expect(stock.calls).toEqual([]);

    held.open();
    await expect(outcome).rejects.toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    // The try ran, then its cancel: nothing stays reserved.
    expect(stock.calls).toEqual(['try', 'cancel']);
    expect(stock.reserved).toBe(0);
    expect(await storage.count({})).toBe(0);
    await root.stop();
    await recovery.stop();
  });

  it('is renewed on the timer while a participant runs longer than the claim', async () => {
    const storage = new CountingStorage(new MemoryStorage());
    const clock = manualClock();
    const stock = new Stock();
    const tcc = new Tcc({
      domain: 'order',
      storage,
      clock,
      timeoutMs: 60_000,
      recovery: { recoverAfterMs: 300 },
    });
    const claimUntil = async () => (await storage.list({})).records[0]?.claim?.until ?? 0;
    const seen: string[] = [];
    const reserve = tcc.compensable('stock.reserve', {
      try: async (n: number) => {
        // Three claims' worth of time passes in this one try; at each step the timer must have
        // renewed the claim before the clock moves on, or it would lapse.
        await passTimeWhileRenewed(clock, claimUntil);
        const [record] = (await storage.list({})).records;
        seen.push((await tcc.recover(record!.xid)).outcome);
        stock.reserved += n;
      },
      confirm: async (n: number) => {
        stock.reserved -= n;
        stock.shipped += n;
      },
      cancel: async (n: number) => {
        stock.reserved -= n;
      },
    });
    await tcc.transaction(() => reserve(3));
    // Before the deadline recovery waits anyway; what matters is that the claim never lapsed.
    expect(seen).toEqual(['waiting']);
    expect(storage.log[0]).toBe('create TRYING');
    expect(storage.log.filter((w) => w === 'update TRYING').length).toBeGreaterThanOrEqual(9);
    expect(storage.log.at(-1)).toBe('remove');
    expect(stock).toMatchObject({ reserved: 0, shipped: 3 });
    await tcc.stop();
  });

  it('is not renewed while the body waits between participants, so a stuck body is recovered', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    const stock = new Stock();
    const stuck = gate();
    const root = new Tcc({
      domain: 'order',
      storage,
      clock,
      timeoutMs: 1_000,
      recovery: { recoverAfterMs: 300 },
    });
    const recovery = new Tcc({ domain: 'order', storage, clock, recovery: { recoverAfterMs: 300 } });
    const reserve = register(root, stock, Promise.resolve());
    register(recovery, stock, Promise.resolve());

    const outcome = root.transaction(async () => {
      await reserve(1);
      await stuck.opened;
    });
    await eventually(async () => stock.calls.includes('try'));
    const [during] = (await storage.list({})).records;
    // Past the deadline and the claim, with several of the timer's ticks (every 100 ms) for a
    // renewal that must not come.
    clock.t = Math.max(during!.deadline, during!.claim!.until) + 1;
    await sleep(350);
    expect((await storage.list({})).records[0]?.version).toBe(during!.version);
    expect(await recovery.recover(during!.xid)).toMatchObject({ outcome: 'cancelled' });
    expect(stock).toMatchObject({ reserved: 0, calls: ['try', 'cancel'] });

    stuck.open();
    await expect(outcome).rejects.toMatchObject({ code: 'TCC_DEADLINE_EXCEEDED' });
    expect(stock.calls).toEqual(['try', 'cancel']);
    await root.stop();
    await recovery.stop();
  });
});
