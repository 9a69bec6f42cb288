import { MemoryStorage, type TransactionStorage } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEADLINE_MS,
  type DeliveryMode,
  LEASE_MS,
  type OrderPlan,
  type Tally,
  type TestClock,
  World,
} from './support/protocol-world.js';
import { openRedis, type RedisHarness } from './support/redis.js';

/*
 * The protocol, proven on the real runtime under generated schedules (model-based: each run is
 * a sequence of steps fast-check generates and shrinks). Steps: an order begins on one of the
 * root's runtimes; the network delivers one of the tries and `.tcc` commands it holds, in any
 * order, once, twice, to two runtimes at once, with its answer lost, not at all, or again much
 * later; `tcc.recover` from any runtime of either domain; a runtime crashes and a fresh one
 * takes its place on the same store; the clock jumps past claims and deadlines. Then the
 * network delivers what it holds, recovery runs until nothing is unfinished, and the
 * properties are checked on the store's records and on the participants, which count their
 * calls and keep no barrier:
 *
 * - no record is ever written both confirmed and cancelled; every branch ends as its root;
 * - no participant's confirm or cancel begins while another of it runs (overlaps that a clock
 *   jump past the claim explains are counted apart: that is a driver frozen beyond its claim);
 * - a participant is confirmed only if its order ended confirmed, cancelled only if it ended
 *   cancelled, never both, and confirmed at least once if it did;
 * - no try runs once a cancel of its branch began (hanging refused), and no cancel begins while
 *   a try of its branch still runs (the try's claim), but after a clock jump past that claim;
 * - a root that wrote its commit point ends confirmed;
 * - once recovery has run to quiescence, every record is terminal.
 *
 * A failure prints fast-check's seed, path and the steps (with their `replayPath`):
 * `FC_SEED=<seed> FC_PATH=<path> [FC_REPLAY_PATH=<replayPath>] npx vitest run test/protocol-property.test.ts -t <store>`
 * (`-t MemoryStorage` or `-t RedisStorage`: the seed is the failing test's) replays it. `TCC_PROPERTY_LONG=1` (`npm run test:properties:long`) runs ten times as many,
 * longer ones, and says every 50 runs how far it got.
 */

const LONG = process.env.TCC_PROPERTY_LONG === '1';
const RUNS = { memory: LONG ? 500 : 50, redis: LONG ? 200 : 20 };

interface Model {
  readonly orders: OrderPlan[];
}
type Step = fc.AsyncCommand<Model, World>;

class Begin implements Step {
  constructor(
    readonly root: number,
    readonly plan: OrderPlan,
  ) {}
  check(m: Readonly<Model>) {
    return m.orders.length < 4;
  }
  async run(m: Model, w: World) {
    const i = m.orders.length;
    m.orders.push(this.plan);
    await w.begin(i, this.root, this.plan);
  }
  toString() {
    return `begin(root ${this.root}, ${JSON.stringify(this.plan)})`;
  }
}

class Deliver implements Step {
  constructor(
    readonly pick: number,
    readonly runtime: number,
    readonly mode: DeliveryMode,
  ) {}
  check() {
    return true;
  }
  run(_m: Model, w: World) {
    return w.deliver(this.pick, this.runtime, this.mode);
  }
  toString() {
    return `deliver(#${this.pick} to capital ${this.runtime}, ${this.mode})`;
  }
}

class Recover implements Step {
  constructor(
    readonly domain: 'order' | 'capital',
    readonly runtime: number,
    readonly order: number,
    readonly branch: number,
    readonly force: boolean,
  ) {}
  check(m: Readonly<Model>) {
    return m.orders.length > 0;
  }
  run(m: Model, w: World) {
    return w.recover(this.domain, this.runtime, this.order % m.orders.length, this.branch, this.force);
  }
  toString() {
    return `recover(${this.domain} ${this.runtime}, order ${this.order}, branch ${this.branch}${this.force ? ', force' : ''})`;
  }
}

class Crash implements Step {
  constructor(
    readonly domain: 'order' | 'capital',
    readonly runtime: number,
  ) {}
  check() {
    return true;
  }
  run(_m: Model, w: World) {
    return w.crash(this.domain, this.runtime);
  }
  toString() {
    return `crash(${this.domain} ${this.runtime})`;
  }
}

class Jump implements Step {
  constructor(readonly ms: number) {}
  check() {
    return true;
  }
  run(_m: Model, w: World) {
    return w.jump(this.ms);
  }
  toString() {
    return `jump(${this.ms} ms)`;
  }
}

const domain = fc.constantFrom('order' as const, 'capital' as const);
const deliver = fc
  .tuple(
    fc.nat(9),
    fc.nat(2),
    fc.constantFrom<DeliveryMode>(
      'once',
      'once',
      'once',
      'twice',
      'together',
      'lose-answer',
      'drop',
      'again-later',
      'background',
    ),
  )
  .map(([pick, runtime, mode]) => new Deliver(pick, runtime, mode));
const orderPlan: fc.Arbitrary<OrderPlan> = fc.record({
  holds: fc.integer({ min: 1, max: 3 }),
  together: fc.boolean(),
  failLocally: fc.constantFrom(false, false, false, true),
  tryDelayMs: fc.constantFrom(0, 0, 5, 20),
  settleDelayMs: fc.constantFrom(0, 0, 5, 20),
});

const kinds: fc.Arbitrary<Step>[] = [
  fc.tuple(fc.nat(2), orderPlan).map(([root, plan]) => new Begin(root, plan)),
  fc.tuple(fc.nat(2), orderPlan).map(([root, plan]) => new Begin(root, plan)),
  deliver,
  deliver,
  deliver,
  deliver,
  fc
    .tuple(domain, fc.nat(2), fc.nat(3), fc.nat(2), fc.boolean())
    .map(([d, runtime, order, branch, force]) => new Recover(d, runtime, order, branch, force)),
  fc.tuple(domain, fc.nat(2)).map(([d, runtime]) => new Crash(d, runtime)),
  // Past a claim; past the try deadline; past the deadline and a branch's grace.
  fc
    .constantFrom(LEASE_MS + 1_000, DEADLINE_MS + 1_000, DEADLINE_MS + LEASE_MS + 1_000)
    .map((ms) => new Jump(ms)),
];
const steps = fc.commands(kinds, {
  size: 'large',
  maxCommands: LONG ? 60 : 40,
  ...(process.env.FC_REPLAY_PATH === undefined ? {} : { replayPath: process.env.FC_REPLAY_PATH }),
});

const replay = {
  ...(process.env.FC_SEED === undefined ? {} : { seed: Number(process.env.FC_SEED) }),
  ...(process.env.FC_PATH === undefined ? {} : { path: process.env.FC_PATH, endOnFailure: true }),
};

/** Shrinking reruns real worlds: past this long after the first failure, it reports what it has. */
const SHRINK_BUDGET_MS = LONG ? 300_000 : 60_000;

async function property(
  store: (clock: TestClock) => Promise<TransactionStorage>,
  runs: number,
  tally: Tally,
): Promise<void> {
  let failedAt: number | undefined;
  let run = 0;
  await fc.assert(
    fc.asyncProperty(steps, async (cmds) => {
      if (LONG && ++run % 50 === 0) console.log(`[protocol properties] run ${run} of ${runs}`);
      if (failedAt !== undefined && Date.now() - failedAt > SHRINK_BUDGET_MS) return;
      const world = await World.open(store, { roots: 2, capitals: 2 });
      const model: Model = { orders: [] };
      try {
        await fc.asyncModelRun(() => ({ model, real: world }), cmds);
        await world.quiesce();
        const violations = await world.violations(model.orders);
        for (const [what, n] of Object.entries(world.tally)) tally[what] = (tally[what] ?? 0) + n;
        tally.excusedOverlaps = (tally.excusedOverlaps ?? 0) + world.business.excusedOverlaps;
        expect(violations, 'properties of the protocol').toEqual([]);
      } catch (error) {
        failedAt ??= Date.now();
        throw error;
      } finally {
        await world.close();
      }
    }),
    { numRuns: runs, ...replay },
  );
}

/** Schedules that never reach these could not catch what the properties are about. */
function expectCoverage(tally: Tally): void {
  const summary = Object.entries(tally)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`[protocol properties] ${summary}`);
  expect(tally['ended:CONFIRMED'] ?? 0, 'orders confirmed').toBeGreaterThan(0);
  expect(tally['ended:CANCELLED'] ?? 0, 'orders cancelled').toBeGreaterThan(0);
  expect(tally['answer:try:409:TCC_TRANSACTION_HANGING'] ?? 0, 'late tries refused').toBeGreaterThan(0);
}

describe('the protocol under generated schedules of tries, commands, recoveries, crashes and clock jumps', () => {
  it('on MemoryStorage', { timeout: LONG ? 3_600_000 : 240_000 }, async () => {
    const tally: Tally = {};
    await property(async (clock) => new MemoryStorage({ clock }), RUNS.memory, tally);
    expectCoverage(tally);
  });

  describe('on RedisStorage', () => {
    let redis: RedisHarness;
    beforeAll(async () => {
      redis = await openRedis();
    });
    afterAll(async () => {
      await redis?.end();
    });

    it('each run under a prefix of its own', { timeout: LONG ? 3_600_000 : 240_000 }, async () => {
      const tally: Tally = {};
      await property(
        async () => new RedisStorage({ client: redis.client, prefix: redis.prefix() }),
        RUNS.redis,
        tally,
      );
      expectCoverage(tally);
    });
  });
});
