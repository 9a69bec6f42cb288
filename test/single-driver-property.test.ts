import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MemoryStorage,
  Tcc,
  TERMINAL_STATUSES,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core';
import {
  Operator,
  OperatorConflictError,
  OperatorRefusedError,
  RecordNotFoundError,
  RecoveryWorker,
} from '@tcc/recovery';
import { RedisStorage } from '@tcc/storage-redis';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from './support/redis.js';

/*
 * Many drivers on the same records at once (issue 10): the root's own commit or cancel and its
 * commands to the branches, `recover` resent in the root and in every runtime of the branch's
 * domain, pollers, BullMQ workers, and an operator's retry and decisions, with business
 * confirms and cancels that take a random while and fail at random. Whatever the schedule, a
 * participant's confirm or cancel never runs twice at once, and every order ends with exactly
 * the effects of its outcome.
 *
 * The drivers meet over real sockets, timers and stores, whose order `fc.scheduler` cannot
 * set; what is generated is when each driver starts and how long each business step takes.
 */

/**
 * The claim length of every runtime. Far longer than any run, so no claim lapses while its
 * driver works however slow the machine is: two drivers of one record at once is then a bug,
 * never a lapse the test caused.
 */
const LEASE_MS = 10_000;
/** Bounds a hang only: a healthy run finishes its records in a fraction of this. */
const SETTLE_BOUND_MS = 60_000;

// --- What is generated -------------------------------------------------------------------

/** One call of a business confirm or cancel: how long it takes and whether it throws. */
interface Call {
  readonly fail: boolean;
  readonly delayMs: number;
}

/** One order: a root with 1-2 remote holds in `capital` and a local note tried after them. */
interface OrderPlan {
  readonly holds: number;
  /** The holds sent at once (`Promise.all`) rather than one after the other. */
  readonly together: boolean;
  /** The note's try fails after the remote tries succeeded: the order cancels. */
  readonly failLocally: boolean;
  readonly timeoutMs: number;
  readonly startAt: number;
  /** How long the branch's try takes: widens the window in which the deadline passes. */
  readonly tryDelayMs: number;
  /** Successive business confirms/cancels of the note, then of each hold; past the end they succeed. */
  readonly note: readonly Call[];
  readonly hold: readonly (readonly Call[])[];
}

/**
 * When a driver acts: `ms` after the run began, or `ms` after the `nth` business confirm or
 * cancel of its order began (or the order's transaction returned, if it never gets that far).
 * The second follows the order however slow the machine is, into the window where another
 * driver is running that order's confirm or cancel.
 */
type Moment =
  | { readonly after: 'start'; readonly ms: number }
  | { readonly after: 'business step'; readonly nth: number; readonly ms: number };

/** A driver acting on a record of an order (indexes are taken modulo what the run has). */
type Action =
  | { readonly driver: 'root.recover'; readonly at: Moment; readonly order: number }
  | {
      readonly driver: 'capital.recover';
      readonly at: Moment;
      readonly order: number;
      readonly hold: number;
      readonly runtime: number;
    }
  | {
      readonly driver: 'operator.retry';
      readonly at: Moment;
      readonly order: number;
      /** -1: the root; else the hold whose branch is retried. */
      readonly hold: number;
      readonly runtime: number;
    }
  | {
      readonly driver: 'operator.decide';
      readonly at: Moment;
      readonly order: number;
      readonly hold: number;
      readonly runtime: number;
      /** On the root only: on a branch the operator follows what its root decided. */
      readonly decision: 'confirm' | 'cancel';
    };

interface Plan {
  readonly orders: readonly OrderPlan[];
  /** Runtimes of `capital` behind the load balancer. */
  readonly branchRuntimes: number;
  /** Which runtime the balancer gives each successive request, cycled. */
  readonly route: readonly number[];
  /** Poller interval of the root and of each runtime of `capital` (`null`: no poller). */
  readonly pollers: readonly (number | null)[];
  /** BullMQ workers of `order` and of `capital` (Redis runs only). */
  readonly workers: { readonly order: boolean; readonly capital: boolean };
  readonly maxRetries: number;
  readonly actions: readonly Action[];
}

const calls = fc.array(fc.record({ fail: fc.boolean(), delayMs: fc.integer({ min: 0, max: 20 }) }), {
  maxLength: 4,
});

const orderPlan: fc.Arbitrary<OrderPlan> = fc.record({
  holds: fc.integer({ min: 1, max: 2 }),
  together: fc.boolean(),
  failLocally: fc.boolean(),
  // Short deadlines race the root's commit against the pollers' and workers' cancel; the
  // others leave the try time to end, whatever the machine's load, so most orders commit.
  timeoutMs: fc.oneof(fc.integer({ min: 20, max: 200 }), fc.integer({ min: 5_000, max: 10_000 })),
  startAt: fc.integer({ min: 0, max: 60 }),
  tryDelayMs: fc.integer({ min: 0, max: 30 }),
  note: calls,
  hold: fc.tuple(calls, calls),
});

const at: fc.Arbitrary<Moment> = fc.oneof(
  fc.record({ after: fc.constant('start' as const), ms: fc.integer({ min: 0, max: 150 }) }),
  fc.record({
    after: fc.constant('business step' as const),
    nth: fc.integer({ min: 1, max: 3 }),
    ms: fc.integer({ min: 0, max: 20 }),
  }),
);
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ driver: fc.constant('root.recover' as const), at, order: fc.nat(2) }),
  fc.record({
    driver: fc.constant('capital.recover' as const),
    at,
    order: fc.nat(2),
    hold: fc.nat(1),
    runtime: fc.nat(2),
  }),
  fc.record({
    driver: fc.constant('operator.retry' as const),
    at,
    order: fc.nat(2),
    hold: fc.integer({ min: -1, max: 1 }),
    runtime: fc.nat(2),
  }),
  fc.record({
    driver: fc.constant('operator.decide' as const),
    at,
    order: fc.nat(2),
    hold: fc.integer({ min: -1, max: 1 }),
    runtime: fc.nat(2),
    decision: fc.constantFrom('confirm' as const, 'cancel' as const),
  }),
);

function plans(withWorkers: boolean): fc.Arbitrary<Plan> {
  return fc.record({
    orders: fc.array(orderPlan, { minLength: 1, maxLength: 3 }),
    branchRuntimes: fc.integer({ min: 2, max: 3 }),
    route: fc.array(fc.nat(2), { minLength: 1, maxLength: 8 }),
    pollers: fc.array(fc.option(fc.integer({ min: 2, max: 30 })), { minLength: 4, maxLength: 4 }),
    workers: withWorkers
      ? fc.record({ order: fc.boolean(), capital: fc.boolean() })
      : fc.constant({ order: false, capital: false }),
    maxRetries: fc.constantFrom(2, 30),
    actions: fc.array(action, { minLength: 1, maxLength: 12 }),
  });
}

// --- The business side ---------------------------------------------------------------------

/**
 * The business confirms and cancels of every participant, by key: runs them as generated, and
 * notes any that begins while another of the same key runs (the property under test) and every
 * one that succeeded.
 */
class Business {
  readonly #running = new Map<string, string[]>();
  readonly #calls = new Map<string, number>();
  /** Business steps begun per order, and the drivers waiting for one of them to begin. */
  readonly #steps = new Map<string, number>();
  readonly #waiters: { order: string; nth: number; resolve: () => void }[] = [];
  readonly succeeded = new Map<string, { confirm: number; cancel: number }>();
  readonly overlaps: string[] = [];

  constructor(private readonly plan: (key: string) => readonly Call[]) {}

  /** Resolves when the `nth` business step of `order` begins. */
  step(order: string, nth: number): Promise<void> {
    if ((this.#steps.get(order) ?? 0) >= nth) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ order, nth, resolve }));
  }

  async settle(phase: 'confirm' | 'cancel', key: string): Promise<void> {
    const order = key.slice(0, key.indexOf('/'));
    const steps = (this.#steps.get(order) ?? 0) + 1;
    this.#steps.set(order, steps);
    for (const w of this.#waiters.filter((w) => w.order === order && w.nth <= steps)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
    const running = this.#running.get(key) ?? [];
    this.#running.set(key, running);
    if (running.length > 0) this.overlaps.push(`${phase} of ${key} began while ${running.join(', ')} ran`);
    running.push(phase);
    const n = this.#calls.get(key) ?? 0;
    this.#calls.set(key, n + 1);
    const call = this.plan(key)[n] ?? { fail: false, delayMs: 0 };
    try {
      await sleep(call.delayMs);
      if (call.fail) throw new Error(`${phase} of ${key} failed on purpose (call ${n + 1})`);
      const done = this.succeeded.get(key) ?? { confirm: 0, cancel: 0 };
      done[phase]++;
      this.succeeded.set(key, done);
    } finally {
      running.splice(running.indexOf(phase), 1);
    }
  }
}

// --- One run -------------------------------------------------------------------------------

/** What every run noted, to see that the schedules reach the interleavings they are for. */
interface Tally {
  outcomes: Record<string, number>;
  orders: { confirmed: number; cancelled: number };
}

interface Backend {
  storage(): Promise<TransactionStorage>;
  destroy(storage: TransactionStorage): Promise<void>;
  /** A connection for BullMQ, when the run may start workers. */
  readonly queue?: { readonly connection: Redis; prefix(storage: TransactionStorage): string };
}

const orderId = (i: number) => `order-${i}`;
const noteKey = (i: number) => `${orderId(i)}/note`;
const holdKey = (i: number, k: number) => `${orderId(i)}/hold-${k}`;

async function run(plan: Plan, backend: Backend, tally: Tally): Promise<void> {
  const count = (outcome: string) => {
    tally.outcomes[outcome] = (tally.outcomes[outcome] ?? 0) + 1;
  };
  /** Errors no driver should meet: a recovery attempt that throws, a poller pass that fails. */
  const unexpected: string[] = [];
  const business = new Business((key) => {
    const [, order, part] = /^order-(\d+)\/(.*)$/.exec(key)!;
    const p = plan.orders[Number(order)]!;
    return part === 'note' ? p.note : p.hold[Number(part!.slice('hold-'.length))]!;
  });
  const storage = await backend.storage();
  const recovery = { recoverAfterMs: LEASE_MS, maxRetries: plan.maxRetries };

  const branch = () => {
    const tcc = new Tcc({ domain: 'capital', storage, recovery });
    const hold = tcc.compensable('capital.hold', {
      propagation: 'MANDATORY',
      try: (_key: string, delayMs: number) => sleep(delayMs),
      confirm: (key: string) => business.settle('confirm', key),
      cancel: (key: string) => business.settle('cancel', key),
    });
    const handler = tcc.httpHandler();
    const route = async (req: IncomingMessage, res: ServerResponse) => {
      try {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const { key, delayMs } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          key: string;
          delayMs: number;
        };
        await hold(key, delayMs);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
      } catch (error) {
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: String(error) }));
      }
    };
    return {
      tcc,
      serve: (req: IncomingMessage, res: ServerResponse) => handler(req, res, () => void route(req, res)),
    };
  };
  const runtimes = Array.from({ length: plan.branchRuntimes }, branch);
  const capitals = runtimes.map((r) => r.tcc);
  const capitalOf = (n: number) => capitals[n % capitals.length]!;
  let turn = 0;
  // The load balancer in front of the runtimes of `capital`: tries and commands alike.
  const server: Server = createServer((req, res) => {
    const r = plan.route[turn++ % plan.route.length]! % runtimes.length;
    runtimes[r]!.serve(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const root = new Tcc({ domain: 'order', storage, recovery });
  const capital = root.http(url, { timeoutMs: 10_000 });
  const note = root.compensable('order.note', {
    try: (_key: string, fail: boolean) => {
      if (fail) throw new Error('the order cannot be noted');
    },
    confirm: (key: string) => business.settle('confirm', key),
    cancel: (key: string) => business.settle('cancel', key),
  });

  const workers: RecoveryWorker[] = [];
  try {
    [root, ...capitals].forEach((tcc, n) => {
      const intervalMs = plan.pollers[n];
      if (intervalMs === null || intervalMs === undefined) return;
      tcc.startRecovery({
        intervalMs,
        concurrency: 4,
        onResult: (r) => count(`poller:${r.outcome}`),
        onError: (error) => unexpected.push(`poller of ${tcc.domain}: ${String(error)}`),
      });
    });
    if (backend.queue !== undefined) {
      for (const [tcc, wanted] of [
        [root, plan.workers.order],
        [capitals[0]!, plan.workers.capital],
      ] as const) {
        if (!wanted) continue;
        const worker = new RecoveryWorker({
          tcc,
          connection: backend.queue.connection,
          prefix: backend.queue.prefix(storage),
          // Stuck means due (`dueAt`); a long untouched-for would only hide records from it.
          recoverAfterMs: 1,
          scanEveryMs: 10,
          concurrency: 4,
          backoff: { delayMs: 5, maxDelayMs: 20 },
        });
        worker.on('recovered', (r) => count(`worker:${r.outcome}`));
        worker.on('error', (error) => unexpected.push(`worker of ${tcc.domain}: ${String(error)}`));
        workers.push(worker);
        await worker.start();
      }
    }

    const orders = plan.orders.map(async (o, i) => {
      await sleep(o.startAt);
      const holds = Array.from(
        { length: o.holds },
        (_, k) => () => capital.post('/hold', { key: holdKey(i, k), delayMs: o.tryDelayMs }),
      );
      try {
        await root.transaction(
          async () => {
            if (o.together) await Promise.all(holds.map((h) => h()));
            else for (const h of holds) await h();
            await note(noteKey(i), o.failLocally);
          },
          { id: orderId(i), timeoutMs: o.timeoutMs },
        );
        count('order:returned');
      } catch (error) {
        count(`order:${(error as { code?: string }).code ?? 'threw'}`);
      }
    });

    const drivers = plan.actions.map(async (a) => {
      const i = a.order % plan.orders.length;
      const id = orderId(i);
      if (a.at.after === 'business step') await Promise.race([business.step(id, a.at.nth), orders[i]]);
      await sleep(a.at.ms);
      const rootRecord = await storage.get(id);
      const branchXid = (hold: number) => {
        const remotes = rootRecord?.participants.filter((p) => p.kind === 'remote') ?? [];
        return remotes.length === 0 ? undefined : remotes[hold % remotes.length]!.xid;
      };
      try {
        switch (a.driver) {
          case 'root.recover':
            return count(`root.recover:${(await root.recover(id)).outcome}`);
          case 'capital.recover': {
            const xid = branchXid(a.hold);
            if (xid === undefined) return count('no-branch-yet');
            return count(`capital.recover:${(await capitalOf(a.runtime).recover(xid)).outcome}`);
          }
          case 'operator.retry': {
            const xid = a.hold < 0 ? id : branchXid(a.hold);
            if (xid === undefined) return count('no-branch-yet');
            const operator = new Operator(a.hold < 0 ? root : capitalOf(a.runtime));
            return count(`operator.retry:${(await operator.retry(xid)).outcome}`);
          }
          case 'operator.decide': {
            if (a.hold < 0) {
              const decided = await new Operator(root).decide(id, a.decision);
              return count(`operator.decide:${decided.recovery?.outcome ?? 'done'}`);
            }
            // An operator who decides a branch follows its root: deciding against it is a
            // heuristic outcome by hand, which no driver could keep consistent.
            const xid = branchXid(a.hold);
            const decision = rootDecision(await storage.get(id));
            if (xid === undefined || decision === undefined) return count('root-undecided');
            const decided = await new Operator(capitalOf(a.runtime)).decide(xid, decision);
            return count(`operator.decide:${decided.recovery?.outcome ?? 'done'}`);
          }
        }
      } catch (error) {
        if (error instanceof OperatorRefusedError) return count('operator:refused');
        if (error instanceof OperatorConflictError) return count('operator:conflict');
        if (error instanceof RecordNotFoundError) return count('operator:not-found');
        unexpected.push(`${a.driver} of ${id}: ${String(error)}`);
      }
    });
    await Promise.all([...orders, ...drivers]);
    const healthy = () => {
      expect(business.overlaps, 'a business confirm or cancel ran twice at once').toEqual([]);
      expect(unexpected, 'errors no driver should meet').toEqual([]);
    };
    // Checked before the records are driven to their end too, so that a record that then
    // never finishes does not hide what the schedule did.
    healthy();

    // Every driver of the schedule has had its turn; what is left is finished by recovery alone.
    for (const worker of workers.splice(0)) await worker.close();
    for (const tcc of [root, ...capitals]) await tcc.stop();
    await settle(storage, root, capitals, count);
    healthy();
    const branches = (await storage.list({ domain: 'capital', limit: 1_000 })).records;
    for (const [i, o] of plan.orders.entries()) {
      const status = (await storage.get(orderId(i)))?.status;
      expect(status, `${orderId(i)} ends confirmed or cancelled`).toMatch(/^(CONFIRMED|CANCELLED)$/);
      const confirmed = status === 'CONFIRMED';
      if (confirmed) tally.orders.confirmed++;
      else tally.orders.cancelled++;
      const keys = [noteKey(i), ...Array.from({ length: o.holds }, (_, k) => holdKey(i, k))];
      const effects = Object.fromEntries(
        keys.map((key) => [key, business.succeeded.get(key) ?? { confirm: 0, cancel: 0 }]),
      );
      if (confirmed) {
        // Every try succeeded, so each participant is confirmed once and never cancelled.
        for (const key of keys)
          expect(effects[key], `effects of ${key} (order confirmed)`).toEqual({ confirm: 1, cancel: 0 });
      } else {
        // A hold whose try never ran is cancelled by a tombstone, without a business cancel.
        for (const key of keys) {
          expect(effects[key]?.confirm, `confirms of ${key} (order cancelled)`).toBe(0);
          expect(effects[key]?.cancel, `cancels of ${key} (order cancelled)`).toBeLessThanOrEqual(1);
        }
      }
      for (const b of branches.filter((r) => r.globalId === orderId(i))) {
        expect(b.status, `branch ${b.xid} of ${orderId(i)} ends as its root`).toBe(status);
      }
    }
  } finally {
    for (const worker of workers) await worker.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const tcc of [root, ...capitals]) await tcc.stop();
    await storage.close();
    await backend.destroy(storage);
  }
}

/** What a root's status says a branch of it must do, if it has decided. */
function rootDecision(record: TransactionRecord | undefined): 'confirm' | 'cancel' | undefined {
  switch (record?.status) {
    case 'CONFIRMING':
    case 'CONFIRMED':
      return 'confirm';
    case 'CANCELLING':
    case 'CANCELLED':
      return 'cancel';
    default:
      return undefined;
  }
}

/**
 * Recovers every unfinished record, parked or not, until none is left: a record that never
 * finishes fails the run once the bound (a hang's, not a speed's) has passed.
 */
async function settle(
  storage: TransactionStorage,
  root: Tcc,
  capitals: readonly Tcc[],
  count: (outcome: string) => void,
): Promise<void> {
  const started = Date.now();
  for (let round = 0; ; round++) {
    const { records } = await storage.list({ limit: 1_000 });
    const open = records.filter((r) => !TERMINAL_STATUSES.has(r.status));
    if (open.length === 0) return;
    if (Date.now() - started > SETTLE_BOUND_MS) {
      const left = open.map((r) => `${r.domain} ${r.xid} ${r.status} (${r.lastError ?? 'no error'})`);
      throw new Error(`records not finished after ${SETTLE_BOUND_MS} ms: ${left.join('; ')}`);
    }
    for (const r of open) {
      const tcc = r.domain === 'order' ? root : capitals[round % capitals.length]!;
      count(`settle:${(await tcc.recover(r.xid, { force: true })).outcome}`);
    }
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- The properties ------------------------------------------------------------------------

/** `TCC_PROPERTY_SEED` (and `TCC_PROPERTY_PATH`) replay a reported counterexample's schedule. */
const replay = {
  ...(process.env.TCC_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.TCC_PROPERTY_SEED) }),
  ...(process.env.TCC_PROPERTY_PATH === undefined ? {} : { path: process.env.TCC_PROPERTY_PATH }),
};

/**
 * Shrinking reruns real schedules, each a fraction of a second: past this much time after the
 * first failure, the remaining candidates pass untried, and fast-check reports the smallest
 * counterexample found by then.
 */
const SHRINK_BUDGET_MS = 30_000;

function shrinkWithin(
  budgetMs: number,
  property: (plan: Plan) => Promise<void>,
): (plan: Plan) => Promise<void> {
  let failedAt: number | undefined;
  return async (plan) => {
    if (failedAt !== undefined && Date.now() - failedAt > budgetMs) return;
    try {
      await property(plan);
    } catch (error) {
      failedAt ??= Date.now();
      throw error;
    }
  };
}

function busy(tally: Tally): number {
  return Object.entries(tally.outcomes)
    .filter(([outcome]) => outcome.endsWith(':busy'))
    .reduce((sum, [, n]) => sum + n, 0);
}

function newTally(): Tally {
  return { outcomes: {}, orders: { confirmed: 0, cancelled: 0 } };
}

describe('one driver per record, under random schedules of every driver', () => {
  it('on MemoryStorage: no business confirm or cancel runs twice at once, and every order ends with the effects its outcome says', {
    timeout: 180_000,
  }, async () => {
    const tally = newTally();
    const backend: Backend = {
      storage: async () => new MemoryStorage(),
      destroy: async () => {},
    };
    await fc.assert(
      fc.asyncProperty(
        plans(false),
        shrinkWithin(SHRINK_BUDGET_MS, (plan) => run(plan, backend, tally)),
      ),
      {
        numRuns: 60,
        ...replay,
      },
    );
    // Schedules that never meet another driver's claim could not catch a second driver.
    expect(busy(tally), 'drivers answered busy over every run').toBeGreaterThan(0);
    expect(tally.orders.confirmed, 'orders confirmed over every run').toBeGreaterThan(0);
    expect(tally.orders.cancelled, 'orders cancelled over every run').toBeGreaterThan(0);
  });

  describe('on RedisStorage, with BullMQ workers', () => {
    let redis: RedisHarness;
    let connection: Redis;
    beforeAll(async () => {
      redis = await openRedis();
      connection = await redis.newClient({ maxRetriesPerRequest: null });
    });
    afterAll(async () => {
      await redis?.end();
    });

    it('no business confirm or cancel runs twice at once, and every order ends with the effects its outcome says', {
      timeout: 180_000,
    }, async () => {
      const tally = newTally();
      const prefixes = new WeakMap<TransactionStorage, string>();
      const backend: Backend = {
        storage: async () => {
          const prefix = redis.prefix();
          const storage = new RedisStorage({ client: redis.client, prefix });
          prefixes.set(storage, prefix);
          return storage;
        },
        destroy: async (storage) => {
          await redis.clear(prefixes.get(storage)!);
        },
        queue: { connection, prefix: (storage) => `${prefixes.get(storage)!}{q}` },
      };
      await fc.assert(
        fc.asyncProperty(
          plans(true),
          shrinkWithin(SHRINK_BUDGET_MS, (plan) => run(plan, backend, tally)),
        ),
        // Fewer runs than in memory: each starts and closes BullMQ workers, and Redis is slower.
        {
          numRuns: 15,
          ...replay,
        },
      );
    });
  });
});
