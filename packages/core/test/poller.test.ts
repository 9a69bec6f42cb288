import { MemoryStorage, Tcc } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { CrashingStorage, SimulatedCrash } from './support/crashing-storage.js';

// The in-process poller of tcc.startRecovery(): bounded concurrency, and records found when
// they are due (a try's deadline, a claim's end), not a fixed time after their last write.

function manualClock(start = Date.now()) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 20_000) throw new Error(`${what}: not within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Roots that enlisted one participant each and whose process died before deciding. */
async function abandonedRoots(n: number, storage: MemoryStorage, clock: { now(): number }) {
  for (let i = 0; i < n; i++) {
    const crashing = new CrashingStorage(storage, (op) => op === 'create');
    const dead = new Tcc({ domain: 'order', storage: crashing, clock, timeoutMs: 1_000 });
    const step = dead.compensable('order.step', {
      try: async (_i: number) => {},
      confirm: async () => {},
      cancel: async () => {},
    });
    await expect(dead.transaction(() => step(i))).rejects.toBeInstanceOf(SimulatedCrash);
  }
}

describe('tcc.startRecovery', () => {
  it('recovers up to `concurrency` records at once, never more (and with no callback given at all)', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    await abandonedRoots(20, storage, clock);
    // Past the deadline (1 s) and the claim each dead try held on its record (recoverAfterMs, 30 s).
    clock.t += 30_001;
    const tcc = new Tcc({ domain: 'order', storage, clock });
    let running = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    tcc.compensable('order.step', {
      try: async (_i: number) => {},
      confirm: async () => {},
      cancel: async () => {
        running++;
        most = Math.max(most, running);
        await gate;
        running--;
      },
    });
    tcc.startRecovery({ concurrency: 6, intervalMs: 10 });
    await eventually('six cancels run at once', () => running === 6);
    // Held there: the seventh waits for one of the six.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running).toBe(6);
    release();
    await eventually('every root cancelled', () => storage.stats().records === 0);
    await tcc.stop();
    expect(most).toBe(6);
  });

  it('finds a try as soon as it is due (its deadline passed, its try claim lapsed), not recoverAfterMs later', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    await abandonedRoots(3, storage, clock);
    const [written] = (await storage.list({})).records;
    // The dead try's claim ends recoverAfterMs (30 s) after its write, past the 1 s deadline:
    // that is when the record is due, and it is found then, not another 30 s later.
    expect(written!.claim).toBeDefined();
    expect(written!.dueAt).toBe(Math.max(written!.deadline, written!.claim!.until));
    expect(written!.dueAt).toBeGreaterThan(written!.deadline);
    clock.t = written!.dueAt + 1;
    const tcc = new Tcc({ domain: 'order', storage, clock });
    tcc.compensable('order.step', {
      try: async (_i: number) => {},
      confirm: async () => {},
      cancel: async () => {},
    });
    const outcomes: string[] = [];
    tcc.startRecovery({ intervalMs: 10, onResult: (r) => outcomes.push(r.outcome) });
    await eventually('the three roots are cancelled', () => outcomes.length === 3);
    await tcc.stop();
    expect(outcomes).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(storage.stats().records).toBe(0);
  });

  it('leaves a try within its deadline alone: it is not due yet', async () => {
    const storage = new MemoryStorage();
    const clock = manualClock();
    await abandonedRoots(1, storage, clock);
    const tcc = new Tcc({ domain: 'order', storage, clock, recovery: { recoverAfterMs: 0 } });
    const results: string[] = [];
    tcc.startRecovery({ intervalMs: 5, onResult: (r) => results.push(r.outcome) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await tcc.stop();
    expect(results).toEqual([]);
    expect(storage.stats().records).toBe(1);
  });

  for (const [where, call] of [
    ['startRecovery', (tcc: Tcc) => tcc.startRecovery({ concurrency: 0 })],
    ['new Tcc', () => new Tcc({ domain: 'd', storage: new MemoryStorage(), recovery: { concurrency: 1.5 } })],
  ] as const) {
    it(`refuses a concurrency that is not a positive integer (${where}), naming it`, () => {
      const tcc = new Tcc({ domain: 'd', storage: new MemoryStorage() });
      expect(() => call(tcc)).toThrow(/concurrency must be a positive integer, got (0|1\.5)/);
    });
  }
});
