import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransactionRecord } from '../storage/record.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import { Tcc } from '../tcc.js';
import type { StorageHarness } from './storage-conformance.js';

/** The claim length of every runtime here, as in the reports that found two drivers at once. */
const LEASE = 200;

/** A clock the suite moves by hand, shared by every runtime of a test. */
interface ManualClock {
  t: number;
  now(): number;
}

/** A gate a business method waits at until the test opens it. */
class Gate {
  #open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.#open = resolve));

  open(): void {
    this.#open();
  }
}

/**
 * The business side of a branch: counts how many confirms and cancels run at once (the
 * property under test is that it never exceeds one), and can fail the next ones or hold them.
 */
class Business {
  readonly calls: string[] = [];
  running = 0;
  maxRunning = 0;
  failNext = 0;
  gate: Gate | undefined;

  async settle(phase: 'confirm' | 'cancel', id: string): Promise<void> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      this.calls.push(`${phase}:${id}`);
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error(`${phase} of ${id} failed on purpose`);
      }
      await this.gate?.opened;
    } finally {
      this.running--;
    }
  }
}

/** Polls `condition` until it holds; fails after a bound no healthy run comes near. */
async function eventually(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > 20_000) throw new Error(`${what}: not within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Moves `clock` on by `ms` in quarter-claim steps, each time waiting until every claim in the
 * store is at least half a claim ahead of the clock: a driver whose claim were not renewed on
 * its timer while its participant runs would let it lapse here, and another driver take over.
 */
async function advance(clock: ManualClock, ms: number, storage: TransactionStorage): Promise<void> {
  for (let moved = 0; moved < ms; moved += LEASE / 4) {
    clock.t += LEASE / 4;
    await eventually('every claim renewed ahead of the clock', async () => {
      const { records } = await storage.list({ limit: 1_000 });
      return records.every((r) => r.claim === undefined || r.claim.until - clock.t > LEASE / 2);
    });
  }
}

interface World {
  readonly storage: TransactionStorage;
  readonly clock: ManualClock;
  readonly business: Business;
  /** The root's runtime (domain `order`). */
  readonly root: Tcc;
  /** Two runtimes of the branch's domain (`capital`) on the same log: two processes of it. */
  readonly callees: readonly [Tcc, Tcc];
  readonly calleeUrl: string;
  /** `.tcc` answers of the callee: how many were busy. */
  readonly busyAnswers: () => number;
  /** A root transaction with one remote branch; with `failLocally`, a local try fails after it. */
  order(id: string, failLocally?: boolean): Promise<unknown>;
  recordOf(domain: string): Promise<TransactionRecord>;
}

/**
 * One driver per record, on the store under test (issue: "two drivers on one branch"): the
 * root's command, the branch's own recovery, two runtimes of one domain, and pollers, with
 * business confirms and cancels that fail once and then run longer than a claim. In every
 * test the business confirm or cancel of a branch never runs twice at the same time.
 */
export function describeSingleDriver(name: string, harness: StorageHarness): void {
  describe(`one driver per record on ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function world(options: { maxRetries?: number } = {}): Promise<World> {
      const storage = await harness.create();
      const clock: ManualClock = { t: Date.now(), now: () => clock.t };
      const recovery = { recoverAfterMs: LEASE, ...options };
      const business = new Business();
      const callee = () => {
        const tcc = new Tcc({ domain: 'capital', storage, clock, recovery });
        const hold = tcc.compensable('capital.hold', {
          propagation: 'MANDATORY',
          try: async (_id: string) => {},
          confirm: (id: string) => business.settle('confirm', id),
          cancel: (id: string) => business.settle('cancel', id),
        });
        const handler = tcc.httpHandler();
        const route = async (req: IncomingMessage, res: ServerResponse) => {
          const chunks: Buffer[] = [];
          for await (const chunk of req) chunks.push(chunk as Buffer);
          const { id } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string };
          await hold(id);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
        };
        return {
          tcc,
          serve: (req: IncomingMessage, res: ServerResponse) => handler(req, res, () => void route(req, res)),
        };
      };
      const runtimes = [callee(), callee()] as const;
      const callees = [runtimes[0].tcc, runtimes[1].tcc] as const;
      let busy = 0;
      let turn = 0;
      // A load balancer in front of the two runtimes of `capital`.
      const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
        if (req.url === '/.tcc') {
          const end = res.end.bind(res);
          res.end = ((...args: Parameters<typeof res.end>) => {
            if (res.statusCode === 409) busy++;
            return end(...args);
          }) as typeof res.end;
        }
        runtimes[turn++ % 2]!.serve(req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const calleeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const root = new Tcc({ domain: 'order', storage, clock, recovery });
      const capital = root.http(calleeUrl, { timeoutMs: 10_000 });
      const local = root.compensable('order.note', {
        try: async (fail: boolean) => {
          if (fail) throw new Error('the order cannot be noted');
        },
        confirm: async () => {},
        cancel: async () => {},
      });
      cleanups.push(async () => {
        business.gate?.open();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        for (const tcc of [root, ...callees]) await tcc.stop();
        await storage.close();
        await harness.destroy?.(storage);
      });
      return {
        storage,
        clock,
        business,
        root,
        callees,
        calleeUrl,
        busyAnswers: () => busy,
        order: (id, failLocally = false) =>
          root.transaction(async () => {
            await capital.post('/hold', { id });
            await local(failLocally);
          }),
        async recordOf(domain) {
          const { records } = await storage.list({ domain, limit: 10 });
          expect(records, `records of ${domain}`).toHaveLength(1);
          return records[0]!;
        },
      };
    }

    for (const phase of ['confirm', 'cancel'] as const) {
      it(`the root's resent ${phase} runs it; the branch's own recovery, now and a claim later, is busy`, async () => {
        const w = await world();
        w.business.failNext = 1;
        await expect(w.order('o-1', phase === 'cancel')).rejects.toThrow();
        const root = await w.recordOf('order');
        const branch = await w.recordOf('capital');
        expect(branch.status).toBe(phase === 'confirm' ? 'CONFIRMING' : 'CANCELLING');

        w.business.gate = new Gate();
        const rootDriving = w.root.recover(root.xid);
        await eventually(`the resent ${phase} runs`, () => w.business.running === 1);
        for (const callee of w.callees) {
          expect(await callee.recover(branch.xid)).toMatchObject({ outcome: 'busy' });
        }
        // Longer than a claim: the command's driver renews its claim while the phase runs.
        await advance(w.clock, 3 * LEASE, w.storage);
        for (const callee of w.callees) {
          expect(await callee.recover(branch.xid)).toMatchObject({ outcome: 'busy' });
        }
        expect(await w.root.recover(root.xid)).toMatchObject({ outcome: 'busy' });

        w.business.gate.open();
        expect(await rootDriving).toMatchObject({ outcome: phase === 'confirm' ? 'confirmed' : 'cancelled' });
        expect(w.business.maxRunning).toBe(1);
        expect(w.business.calls).toEqual([`${phase}:o-1`, `${phase}:o-1`]);
        expect((await w.recordOf('capital')).status).toBe(phase === 'confirm' ? 'CONFIRMED' : 'CANCELLED');
      });
    }

    it("the branch's own recovery first: the root's command is answered busy, retried, and finds it done", async () => {
      const w = await world();
      w.business.failNext = 1;
      await expect(w.order('o-2')).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
      const root = await w.recordOf('order');
      const branch = await w.recordOf('capital');

      w.business.gate = new Gate();
      const calleeDriving = w.callees[0].recover(branch.xid);
      await eventually('the branch recovery runs the confirm', () => w.business.running === 1);
      const rootDriving = w.root.recover(root.xid);
      await eventually('the root is answered busy', () => w.busyAnswers() > 0);
      w.business.gate.open();

      expect(await calleeDriving).toMatchObject({ outcome: 'confirmed' });
      expect(await rootDriving).toMatchObject({ outcome: 'confirmed' });
      expect(w.business.maxRunning).toBe(1);
      expect(w.business.calls).toEqual(['confirm:o-2', 'confirm:o-2']);
    });

    it('a branch that stays busy is never counted: the root is not parked, however often it finds it busy', async () => {
      const w = await world({ maxRetries: 1 });
      w.business.failNext = 1;
      await expect(w.order('o-3')).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
      const root = await w.recordOf('order');
      const branch = await w.recordOf('capital');

      w.business.gate = new Gate();
      const calleeDriving = w.callees[0].recover(branch.xid);
      await eventually('the branch recovery runs the confirm', () => w.business.running === 1);
      for (let attempt = 0; attempt < 2; attempt++) {
        const result = await w.root.recover(root.xid);
        expect(result).toMatchObject({ outcome: 'busy', error: { code: 'TCC_BUSY' } });
        const stored = await w.storage.get(root.xid);
        expect(stored).toMatchObject({ status: 'CONFIRMING', retries: 0 });
        expect(stored?.parkedAt).toBeUndefined();
      }
      w.business.gate.open();
      expect(await calleeDriving).toMatchObject({ outcome: 'confirmed' });
      expect(await w.root.recover(root.xid)).toMatchObject({ outcome: 'confirmed' });
      expect(w.business.maxRunning).toBe(1);
    });

    it('two runtimes of one domain: a confirm longer than the claim keeps it, and the other stays out', async () => {
      const storage = await harness.create();
      const clock: ManualClock = { t: Date.now(), now: () => clock.t };
      const business = new Business();
      const runtime = () => {
        const tcc = new Tcc({ domain: 'order', storage, clock, recovery: { recoverAfterMs: LEASE } });
        const step = tcc.compensable('order.ship', {
          try: async (_id: string) => {},
          confirm: (id: string) => business.settle('confirm', id),
          cancel: (id: string) => business.settle('cancel', id),
        });
        return { tcc, step };
      };
      const a = runtime();
      const b = runtime();
      cleanups.push(async () => {
        business.gate?.open();
        await a.tcc.stop();
        await b.tcc.stop();
        await storage.close();
        await harness.destroy?.(storage);
      });
      business.failNext = 1;
      await expect(a.tcc.transaction(() => a.step('s-1'))).rejects.toMatchObject({
        code: 'TCC_CONFIRM_FAILED',
      });
      const [record] = (await storage.list({})).records;

      business.gate = new Gate();
      const driving = a.tcc.recover(record!.xid);
      await eventually('the confirm runs', () => business.running === 1);
      await advance(clock, 3 * LEASE, storage);
      expect(await b.tcc.recover(record!.xid)).toMatchObject({ outcome: 'busy' });
      business.gate.open();
      expect(await driving).toMatchObject({ outcome: 'confirmed' });
      expect(business.maxRunning).toBe(1);
      expect(business.calls).toEqual(['confirm:s-1', 'confirm:s-1']);
    });

    it('pollers only, in the root and both runtimes of the branch: one of them drives, the others stay out', async () => {
      const w = await world();
      w.business.failNext = 1;
      await expect(w.order('o-4')).rejects.toMatchObject({ code: 'TCC_CONFIRM_FAILED' });
      w.business.gate = new Gate();
      const outcomes: string[] = [];
      for (const tcc of [w.root, ...w.callees]) {
        tcc.startRecovery({ intervalMs: 10, onResult: (r) => outcomes.push(r.outcome) });
      }
      // The failed confirm rests a claim's length before recovery takes it up.
      w.clock.t += LEASE + 1;
      await eventually('a poller runs the confirm again', () => w.business.running === 1);
      await advance(w.clock, 5 * LEASE, w.storage);
      w.business.gate.open();
      // Time goes on (a driver that found the branch busy rests a claim's length).
      await eventually('every record is finished', async () => {
        await advance(w.clock, LEASE, w.storage);
        const { records } = await w.storage.list({ limit: 10 });
        return records.every((r) => r.status === 'CONFIRMED');
      });
      expect(w.business.maxRunning).toBe(1);
      expect(w.business.calls).toEqual(['confirm:o-4', 'confirm:o-4']);
      expect(outcomes).toContain('confirmed');
    });
  });
}
