/**
 * `npm run bench -- place-order`: the place-order flow of a shop on PostgreSQL, as a user of
 * tcc builds it: a root transaction sets a red packet aside and freezes the order's cash, then
 * confirms both; about one order in five asks for more cash than the account holds, so its
 * cash try fails and both are cancelled. Business tables `accounts` and `red_packets`, every
 * try, confirm and cancel one UPDATE through `barrierQuery(pool, tcc.current(), …)` (fence and
 * UPDATE in one statement), at concurrency 64 and 1; and at 64 the same participants through
 * the multi-statement `barrier(pool, tcc.current(), …)`, for comparison. The log on
 * `SqlStorage` in the same database, one `pg.Pool` of 16. Next to them, in the same run and
 * interleaved, the raw single-row upsert rate of the same pool on the same server.
 * Statements and commits are counted per order as the server answers them (see `counting`).
 * After every run the books are checked (money conserved, nothing left frozen, every order's
 * record finished, every branch fenced, no error, the cancel share as planned); any breach
 * fails the benchmark. `--help` lists the options.
 */
import { fileURLToPath } from 'node:url';
import { Tcc } from '@tcc/core';
import { barrier, barrierQuery, SqlStorage } from '@tcc/storage-sql';
import pg from 'pg';
import { reportAtAGlance, sharp } from './glance.js';
import { type LoadResult, median, runLoad } from './harness.js';
import { parseBenchArgs } from './options.js';
import { fixed, int, machine, saveResults, table, verdict } from './report.js';
import { openSchema } from './servers.js';

const USAGE = `usage: node bench/dist/place-order.bench.js [options]

  --quick            smoke run: one short run per row, nothing saved
  --duration <ms>    length of one run of a row (default 3000, quick 300)
  --repeats <n>      runs per row, the median is reported (default 3, quick 1)
  --pool <n>         connections of the pg.Pool every row shares (default 16)
  --save / --no-save write bench/results/place-order-<date>.json and place-order-latest.json
                     (default: save a full run)
  --check            exit with status 1 if a target is missed
  --help

server: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); each run works in a
schema of its own (tcc_po_<pid>), dropped at the end.`;

/** Targets on this 2-core machine, quiet (issue "Speed where users pay for it", item 1). */
const TARGET = {
  ratioToRaw: 0.15, // place order at c=64 ÷ raw upsert at c=64, same run
  statementsPerOrder: 10,
  commitsPerOrder: 6,
  p50MsAtC1: 8,
} as const;

const USERS = 1024; // accounts and red packets: one row per user; also the raw upsert's keys
const OPENING = 1_000_000_000_000n; // each account's and each red packet's opening balance
const CASH = 100; // cash of an order within budget
const PACKET = 5; // red packet amount of every order
const OVER_BUDGET_CASH = 10_000_000_000_000; // more than any account ever holds
/** Order n is over budget when n % 5 === OVER_BUDGET_AT: exactly one in five, by construction. */
const OVER_BUDGET_EVERY = 5;
const OVER_BUDGET_AT = 2;

interface Args {
  readonly quick: boolean;
  readonly durationMs: number;
  readonly repeats: number;
  readonly pool: number;
  readonly save: boolean;
  readonly check: boolean;
}

function parse(argv: readonly string[]): Args {
  const args = parseBenchArgs(
    USAGE,
    { duration: { type: 'string' }, repeats: { type: 'string' }, pool: { type: 'string' } },
    argv,
  );
  const { quick } = args;
  return {
    quick,
    durationMs: args.positive('duration', quick ? 300 : 3000),
    repeats: args.positive('repeats', quick ? 1 : 3),
    pool: args.positive('pool', 16),
    save: args.save(!quick),
    check: args.check,
  };
}

// ---------------------------------------------------------------------------------------------
// Counting statements and commits where pg sends them and the server answers them.
//
// statements: every query a pg connection sends (one statement each: nothing here sends two
//   in one query), BEGIN, COMMIT and ROLLBACK included.
// commits: what the server commits that could have written: a COMMIT the server answered
//   `COMMIT` (not one answered `ROLLBACK`, the silent end of a failed transaction), plus every
//   statement outside BEGIN … COMMIT whose command tag is INSERT, UPDATE, DELETE or MERGE, or
//   a SELECT with a data-modifying WITH (barrierQuery's empty rollback): an autocommitted
//   write, its own transaction. Autocommitted reads and ROLLBACKs are not commits: they write
//   nothing durable and wait for no WAL flush.

// fenced: barrierQuery's business statement with its fence as a CTE, one statement for both.
type Kind = 'begin' | 'commit' | 'rollback' | 'log' | 'fence' | 'fenced' | 'business' | 'raw' | 'other';
const KINDS: readonly Kind[] = [
  'begin',
  'commit',
  'rollback',
  'log',
  'fence',
  'fenced',
  'business',
  'raw',
  'other',
];

interface Counts {
  statements: number;
  commits: number;
  byKind: Record<Kind, number>;
}

const counts: Counts = { statements: 0, commits: 0, byKind: zeroKinds() };

function zeroKinds(): Record<Kind, number> {
  return Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
}

function snapshot(): Counts {
  return { statements: counts.statements, commits: counts.commits, byKind: { ...counts.byKind } };
}

function kindOf(text: string): Kind {
  const head = text.trimStart().slice(0, 8).toUpperCase();
  if (head.startsWith('BEGIN')) return 'begin';
  if (head.startsWith('COMMIT')) return 'commit';
  if (head.startsWith('ROLLBACK')) return 'rollback';
  const business = text.includes('.accounts') || text.includes('.red_packets');
  if (text.includes('_barrier')) return business ? 'fenced' : 'fence';
  if (text.includes('tcc_transactions')) return 'log';
  if (business) return 'business';
  if (text.includes('.raw')) return 'raw';
  return 'other';
}

const WRITE_TAGS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);
const WRITING_WITH = /^\s*WITH\b[\s\S]*\b(INSERT|UPDATE|DELETE|MERGE)\b/i;

/** An autocommitted statement that could have written: its tag, or a SELECT's data-modifying WITH. */
function writes(text: string, tag: string): boolean {
  return WRITE_TAGS.has(tag) || (tag === 'SELECT' && WRITING_WITH.test(text));
}
const inTransaction = new WeakSet<object>();

function countStatements(): void {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : String((first as { text?: unknown } | null)?.text ?? '');
    const kind = kindOf(text);
    counts.statements++;
    counts.byKind[kind]++;
    const inside = inTransaction.has(this);
    if (kind === 'begin') inTransaction.add(this);
    else if (kind === 'commit' || kind === 'rollback') inTransaction.delete(this);
    const answered = (result: unknown): void => {
      const tag = (result as { command?: string } | undefined)?.command;
      if (kind === 'commit') {
        if (tag === 'COMMIT') counts.commits++;
      } else if (
        !inside &&
        kind !== 'begin' &&
        kind !== 'rollback' &&
        tag !== undefined &&
        writes(text, tag)
      ) {
        counts.commits++;
      }
    };
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      // pg.Pool#query calls client.query(config, undefined, callback).
      args[last] = (error: unknown, result: unknown) => {
        if (error == null) answered(result);
        return (callback as (e: unknown, r: unknown) => unknown)(error, result);
      };
      return original.apply(this, args);
    }
    const returned = original.apply(this, args) as Promise<unknown>;
    return returned.then((result) => {
      answered(result);
      return result;
    });
  };
}

// ---------------------------------------------------------------------------------------------
// The shop

interface Order {
  readonly id: string;
  readonly user: number;
  readonly cash: number;
  readonly packet: number;
}

class OverBudgetError extends Error {
  override readonly name = 'OverBudgetError';
}

/** SQLSTATE of a CHECK violation: barrierQuery's try refused by the table. */
const CHECK_VIOLATION = '23514';

/** How a participant's phase reaches the database: `barrierQuery` (one statement) or `barrier`. */
type Style = 'query' | 'barrier';

interface Shop {
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly storage: SqlStorage;
  readonly tcc: Tcc;
  /** One order: `true` confirmed, `false` cancelled over budget; anything else throws. */
  placeOrder(n: number, style: Style): Promise<boolean>;
  /** The raw single-row upsert the flow is measured against. */
  rawUpsert(): Promise<unknown>;
  close(): Promise<void>;
}

async function openShop(args: Args): Promise<Shop> {
  const schema = `tcc_po_${process.pid}`;
  const pool = await openSchema(args.pool, schema);
  for (const table of ['accounts', 'red_packets']) {
    // The CHECK is the try's rule for barrierQuery: an over-budget UPDATE fails as a statement,
    // so its fence never commits (barrier's UPDATE checks the balance in its WHERE instead).
    await pool.query(
      `CREATE TABLE ${schema}.${table} (id int PRIMARY KEY, balance bigint NOT NULL,
         frozen bigint NOT NULL DEFAULT 0, spent bigint NOT NULL DEFAULT 0,
         CHECK (balance >= 0 AND frozen >= 0))`,
    );
    await pool.query(
      `INSERT INTO ${schema}.${table} (id, balance) SELECT i, $1::bigint FROM generate_series(0, $2 - 1) AS i`,
      [OPENING.toString(), USERS],
    );
  }
  await pool.query(`CREATE TABLE ${schema}.raw (k int PRIMARY KEY, v text NOT NULL)`);
  const storage = new SqlStorage({ client: pool, schema });
  await storage.migrate(); // the log and <table>_barrier, in the same schema
  const tcc = new Tcc({ domain: 'shop', storage });
  const fence = { schema };

  /**
   * One wallet as a participant: the try moves `amount` from balance to frozen (refused when
   * the balance cannot cover it), confirm from frozen to spent, cancel back to the balance;
   * each phase one UPDATE. `query`: fence and UPDATE in one statement (`barrierQuery`; the
   * table's CHECK refuses the try); `barrier`: a local transaction around the UPDATE.
   */
  const wallet = (
    style: Style,
    name: string,
    table: string,
    amountOf: (o: Order) => number,
    what: string,
  ) => {
    const update = (set: string, guarded: boolean) =>
      `UPDATE ${schema}.${table} SET ${set} WHERE id = $1${guarded ? ' AND balance >= $2 RETURNING 1 AS ok' : ''}`;
    const overBudget = (o: Order) => new OverBudgetError(`${what} ${o.user} cannot cover ${amountOf(o)}`);
    const phase = (set: string, isTry = false) => {
      if (style === 'query') {
        const text = update(set, false);
        return async (o: Order) => {
          try {
            await barrierQuery(pool, tcc.current(), text, [o.user, amountOf(o)], fence);
          } catch (error) {
            if (isTry && (error as { code?: unknown }).code === CHECK_VIOLATION) throw overBudget(o);
            throw error;
          }
        };
      }
      const text = update(set, isTry);
      return (o: Order) =>
        barrier(
          pool,
          tcc.current(),
          async (tx) => {
            const rows = await tx.query(text, [o.user, amountOf(o)]);
            if (isTry && rows.length === 0) throw overBudget(o);
          },
          fence,
        );
    };
    return tcc.compensable(name, {
      try: phase('balance = balance - $2, frozen = frozen + $2', true),
      confirm: phase('frozen = frozen - $2, spent = spent + $2'),
      cancel: phase('frozen = frozen - $2, balance = balance + $2'),
    });
  };
  const participants = (style: Style, suffix: string) => ({
    usePacket: wallet(style, `red-packet.use${suffix}`, 'red_packets', (o) => o.packet, 'red packet'),
    freezeCash: wallet(style, `capital.freeze${suffix}`, 'accounts', (o) => o.cash, 'account'),
  });
  const byStyle = { query: participants('query', ''), barrier: participants('barrier', '.tx') };

  const upsert = {
    name: 'tcc-bench-po-raw-upsert',
    text: `INSERT INTO ${schema}.raw (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
  };
  let rawSeq = 0;
  return {
    schema,
    pool,
    storage,
    tcc,
    async placeOrder(n: number, style: Style): Promise<boolean> {
      const { usePacket, freezeCash } = byStyle[style];
      const overBudget = n % OVER_BUDGET_EVERY === OVER_BUDGET_AT;
      const order: Order = {
        id: `o-${n}`,
        user: (n * 7919) % USERS,
        cash: overBudget ? OVER_BUDGET_CASH : CASH,
        packet: PACKET,
      };
      try {
        // Vouchers before cash, as examples/src/shop's order: an over-budget order has set its
        // red packet aside when its cash try fails, so both branches are cancelled for real.
        await tcc.transaction(async () => {
          await usePacket(order);
          await freezeCash(order);
        });
      } catch (error) {
        if (overBudget && error instanceof OverBudgetError) return false;
        throw error;
      }
      if (overBudget) throw new Error(`order ${order.id} was over budget but confirmed`);
      return true;
    },
    rawUpsert: () => pool.query({ ...upsert, values: [rawSeq++ % USERS, 'x'] }),
    async close() {
      await tcc.stop();
      await storage.close();
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measuring

type RowId = 'po-c64' | 'po-barrier-c64' | 'po-c1' | 'raw-c64' | 'raw-c1';
/** What a row runs: place orders with participants of one style, or the raw upsert. */
type What = Style | 'raw';
const ROWS: readonly { id: RowId; name: string; what: What; concurrency: number }[] = [
  // In this order (and its reverse), each place-order run has its raw run right next to it.
  { id: 'po-c64', name: 'postgres place-order c=64', what: 'query', concurrency: 64 },
  { id: 'raw-c64', name: 'postgres raw upsert c=64', what: 'raw', concurrency: 64 },
  { id: 'po-barrier-c64', name: 'postgres place-order (barrier) c=64', what: 'barrier', concurrency: 64 },
  { id: 'po-c1', name: 'postgres place-order c=1', what: 'query', concurrency: 1 },
  { id: 'raw-c1', name: 'postgres raw upsert c=1', what: 'raw', concurrency: 1 },
];

/** What one run measures; a row holds the medians of its runs, metric by metric. */
interface Metrics {
  readonly txPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statementsPerOp: number;
  readonly commitsPerOp: number;
  readonly byKindPerOp: Record<Kind, number>;
  /** Orders cancelled (over budget) ÷ orders; 0 for raw. */
  readonly cancelShare: number;
  readonly clientCpuUsPerOp: number;
}

interface Run extends Metrics {
  readonly ops: number;
}

/** What every order did, over the whole process (warm-up included), for the final checks. */
const tally = { orders: 0, confirmed: 0, cancelled: 0, overBudgetPlanned: 0, errors: 0 };
const errorSamples: string[] = [];
let orderSeq = 0;

function orderOp(
  shop: Shop,
  style: Style,
): { op: () => Promise<void>; confirmed: () => number; cancelled: () => number } {
  let confirmed = 0;
  let cancelled = 0;
  const op = async (): Promise<void> => {
    const n = ++orderSeq;
    tally.orders++;
    if (n % OVER_BUDGET_EVERY === OVER_BUDGET_AT) tally.overBudgetPlanned++;
    try {
      if (await shop.placeOrder(n, style)) {
        confirmed++;
        tally.confirmed++;
      } else {
        cancelled++;
        tally.cancelled++;
      }
    } catch (error) {
      // Counted, not thrown: one failure must not stop the other loops mid-run; the checks
      // after the runs fail the benchmark on any.
      tally.errors++;
      if (errorSamples.length < 5)
        errorSamples.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
    }
  };
  return { op, confirmed: () => confirmed, cancelled: () => cancelled };
}

async function measure(shop: Shop, what: What, concurrency: number, durationMs: number): Promise<Run> {
  const before = snapshot();
  const order = orderOp(shop, what === 'raw' ? 'query' : what);
  const op = what === 'raw' ? shop.rawUpsert : order.op;
  const result: LoadResult = await runLoad(op, { concurrency, durationMs });
  const after = snapshot();
  const n = result.count;
  const byKindPerOp = zeroKinds();
  for (const k of KINDS) byKindPerOp[k] = (after.byKind[k] - before.byKind[k]) / n;
  return {
    ops: n,
    txPerSec: n / (result.wallNs / 1e9),
    p50Ms: result.histogram.quantile(0.5) / 1e6,
    p99Ms: result.histogram.quantile(0.99) / 1e6,
    statementsPerOp: (after.statements - before.statements) / n,
    commitsPerOp: (after.commits - before.commits) / n,
    byKindPerOp,
    cancelShare: what === 'raw' ? 0 : order.cancelled() / n,
    clientCpuUsPerOp: result.cpuUs / n,
  };
}

/** Medians over `runs`, metric by metric. */
interface Row extends Metrics {
  readonly id: RowId;
  readonly name: string;
  readonly concurrency: number;
  /** Place order rows: median over repeats of (this run's tx/s ÷ the raw run's at the same concurrency in that repeat). */
  readonly ratioToRaw: number | undefined;
  readonly runs: readonly Run[];
}

function rowOf(spec: (typeof ROWS)[number], runs: readonly Run[], rawRuns?: readonly Run[]): Row {
  const m = (f: (r: Run) => number): number => median(runs.map(f));
  const byKindPerOp = zeroKinds();
  for (const k of KINDS) byKindPerOp[k] = m((r) => r.byKindPerOp[k]);
  return {
    id: spec.id,
    name: spec.name,
    concurrency: spec.concurrency,
    txPerSec: m((r) => r.txPerSec),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    statementsPerOp: m((r) => r.statementsPerOp),
    commitsPerOp: m((r) => r.commitsPerOp),
    byKindPerOp,
    cancelShare: m((r) => r.cancelShare),
    clientCpuUsPerOp: m((r) => r.clientCpuUsPerOp),
    ratioToRaw:
      rawRuns === undefined
        ? undefined
        : median(runs.map((r, i) => r.txPerSec / (rawRuns[i]?.txPerSec ?? Number.NaN))),
    runs,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks: what was measured must be what was meant

async function checkBooks(shop: Shop): Promise<string[]> {
  const problems: string[] = [];
  const { schema, pool } = shop;
  const expected = { accounts: BigInt(CASH), red_packets: BigInt(PACKET) };
  for (const table of ['accounts', 'red_packets'] as const) {
    const { rows } = await pool.query<{ total: string; frozen: string; spent: string; negative: number }>(
      `SELECT sum(balance + frozen + spent)::text AS total, sum(frozen)::text AS frozen, sum(spent)::text AS spent,
              count(*) FILTER (WHERE balance < 0 OR frozen < 0)::int AS negative
       FROM ${schema}.${table}`,
    );
    const r = rows[0]!;
    const opening = OPENING * BigInt(USERS);
    if (BigInt(r.total) !== opening)
      problems.push(`${table}: balance + frozen + spent = ${r.total}, opened with ${opening}`);
    if (BigInt(r.frozen) !== 0n) problems.push(`${table}: ${r.frozen} still frozen after every order ended`);
    if (r.negative !== 0)
      problems.push(`${table}: ${r.negative} rows with a negative balance or frozen amount`);
    const spent = expected[table] * BigInt(tally.confirmed);
    if (BigInt(r.spent) !== spent)
      problems.push(`${table}: spent ${r.spent}, but ${tally.confirmed} confirmed orders make ${spent}`);
  }
  // Every branch went through the barrier: 2 confirm fences per confirmed order, 2 cancel
  // fences per cancelled one (the red packet's real cancel, the cash's empty rollback).
  const { rows: fences } = await pool.query<{ phase: string; reason: string; n: number }>(
    `SELECT phase, reason, count(*)::int AS n FROM ${schema}.tcc_transactions_barrier GROUP BY phase, reason`,
  );
  const fenceCount = (phase: string, reason?: string): number =>
    fences
      .filter((f) => f.phase === phase && (reason === undefined || f.reason === reason))
      .reduce((s, f) => s + f.n, 0);
  if (fenceCount('confirm') !== 2 * tally.confirmed)
    problems.push(
      `${fenceCount('confirm')} confirm fences for ${tally.confirmed} confirmed orders (expected 2 each)`,
    );
  if (fenceCount('cancel') !== 2 * tally.cancelled)
    problems.push(
      `${fenceCount('cancel')} cancel fences for ${tally.cancelled} cancelled orders (expected 2 each)`,
    );
  if (fenceCount('try', 'cancel') !== tally.cancelled)
    problems.push(
      `${fenceCount('try', 'cancel')} empty rollbacks for ${tally.cancelled} cancelled orders (expected 1 each)`,
    );
  // Every order's record finished: with retainMs 0 a finished root is removed, so nothing is left.
  const left = await shop.storage.list({ domain: 'shop', limit: 10 });
  if (left.records.length > 0) {
    const total = await shop.storage.count({ domain: 'shop' });
    problems.push(
      `${total} transaction records not finished, e.g. ${left.records.map((r) => `${r.xid} ${r.status}`).join(', ')}`,
    );
  }
  if (tally.errors !== 0) problems.push(`${tally.errors} orders failed:\n${errorSamples.join('\n')}`);
  if (tally.confirmed + tally.cancelled + tally.errors !== tally.orders)
    problems.push(
      `${tally.orders} orders started, ${tally.confirmed + tally.cancelled + tally.errors} ended`,
    );
  if (tally.cancelled !== tally.overBudgetPlanned)
    problems.push(`${tally.cancelled} orders cancelled, ${tally.overBudgetPlanned} were over budget`);
  return problems;
}

/** Orders are numbered consecutively, so a run's cancel share is within 1/orders of 1/5. */
function checkCancelShare(label: string, run: Run): string[] {
  const tolerance = 1 / run.ops + 1e-9;
  return Math.abs(run.cancelShare - 1 / OVER_BUDGET_EVERY) > tolerance
    ? [`${label}: cancel share ${fixed(run.cancelShare * 100)} % of ${run.ops} orders, not 20 %`]
    : [];
}

/** Checks the books after a run (every order of it has ended) and throws on any breach. */
async function verify(shop: Shop, label: string, run?: Run): Promise<void> {
  const problems = [...(await checkBooks(shop)), ...(run === undefined ? [] : checkCancelShare(label, run))];
  if (problems.length > 0) {
    throw new Error(
      `place-order, after ${label}: what was measured is not what was meant:\n- ${problems.join('\n- ')}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Report

interface Target {
  readonly row: RowId;
  readonly text: string;
  readonly value: number;
  /** `value` with its unit, as the summary of `npm run bench` shows it. */
  readonly figure: string;
  readonly met: boolean;
}

function targetsOf(rows: readonly Row[]): Target[] {
  const po64 = rows.find((r) => r.id === 'po-c64')!;
  const po1 = rows.find((r) => r.id === 'po-c1')!;
  return [
    {
      row: 'po-c64',
      text: `>= ${TARGET.ratioToRaw} of raw`,
      value: po64.ratioToRaw ?? Number.NaN,
      figure: `${sharp(po64.ratioToRaw ?? Number.NaN, 3, TARGET.ratioToRaw)} of raw`,
      met: (po64.ratioToRaw ?? 0) >= TARGET.ratioToRaw,
    },
    {
      row: 'po-c64',
      text: `<= ${TARGET.statementsPerOrder} statements`,
      value: po64.statementsPerOp,
      figure: `${sharp(po64.statementsPerOp, 2, TARGET.statementsPerOrder)} statements`,
      met: po64.statementsPerOp <= TARGET.statementsPerOrder,
    },
    {
      row: 'po-c64',
      text: `<= ${TARGET.commitsPerOrder} commits`,
      value: po64.commitsPerOp,
      figure: `${sharp(po64.commitsPerOp, 2, TARGET.commitsPerOrder)} commits`,
      met: po64.commitsPerOp <= TARGET.commitsPerOrder,
    },
    {
      row: 'po-c1',
      text: `p50 <= ${TARGET.p50MsAtC1} ms`,
      value: po1.p50Ms,
      figure: `p50 ${sharp(po1.p50Ms, 2, TARGET.p50MsAtC1)} ms`,
      met: po1.p50Ms <= TARGET.p50MsAtC1,
    },
  ];
}

function format(
  date: string,
  m: ReturnType<typeof machine>,
  args: Args,
  rows: readonly Row[],
  targets: readonly Target[],
): string {
  const order = ['po-c64', 'po-barrier-c64', 'raw-c64', 'po-c1', 'raw-c1'] as const;
  const sorted = order.map((id) => rows.find((r) => r.id === id)!);
  const body = sorted.map((r) => [
    r.name,
    int(r.txPerSec),
    fixed(r.p50Ms, 2),
    fixed(r.p99Ms, 2),
    fixed(r.statementsPerOp, 2),
    fixed(r.commitsPerOp, 2),
    int(r.txPerSec * r.statementsPerOp),
    r.id.startsWith('po') ? `${fixed(r.cancelShare * 100)} %` : '–',
    r.ratioToRaw === undefined ? '–' : fixed(r.ratioToRaw, 3),
    targets
      .filter((t) => t.row === r.id)
      .map((t) => `${t.text}: ${verdict(t.met)}`)
      .join(', ') || '–',
  ]);
  const breakdown = sorted
    .filter((r) => r.id.startsWith('po'))
    .map((r) => [
      r.name,
      ...KINDS.filter((k) => k !== 'raw').map((k) => fixed(r.byKindPerOp[k], 2)),
      fixed(r.clientCpuUsPerOp, 0),
    ]);
  const missed = targets.filter((t) => !t.met);
  return [
    `tcc place-order benchmark  ${date}`,
    `node ${m.node} | ${m.cpu} x ${m.cores} | ${m.os} | load ${m.loadAverageAtStart.join(' ')}`,
    `each figure: median of ${args.repeats} runs of ${args.durationMs / 1000} s, the five rows interleaved` +
      ` | pg.Pool of ${args.pool}${args.quick ? ' | QUICK (smoke run, figures are rough)' : ''}`,
    '',
    table(
      [
        'row',
        'tx/s',
        'p50 ms',
        'p99 ms',
        'statements/order',
        'commits/order',
        'statements/s',
        'cancelled',
        'ratio to raw',
        'target',
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      body,
    ),
    '',
    table(
      ['statements per order', ...KINDS.filter((k) => k !== 'raw'), 'client CPU µs/order'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      breakdown,
    ),
    '',
    missed.length === 0
      ? `targets: all ${targets.length} met`
      : `targets: ${missed.length} of ${targets.length} MISSED: ${missed.map((t) => `${t.row} ${t.text} (${fixed(t.value, 3)})`).join('; ')}`,
    "ratio to raw = place-order tx/s ÷ raw upsert ops/s at the same concurrency, median of the repeats' pairs.",
    'statements/s = tx/s × statements per order: the rate of statements the server ran for the row.',
    'commits: COMMITs answered COMMIT + autocommitted writes (INSERT/UPDATE/DELETE, a writing WITH; bench/README.md, place-order).',
    "fenced: a business UPDATE with its fence in one statement (barrierQuery); fence: the barrier's own statements.",
    `checked after every run: money and red packets conserved, nothing frozen, every record finished, every branch fenced, 0 errors, 20 % cancelled (${int(tally.orders)} orders: ${int(tally.confirmed)} confirmed, ${int(tally.cancelled)} cancelled)`,
  ].join('\n');
}

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  countStatements();
  const date = new Date().toISOString();
  const atStart = machine(); // the load average before this run added to it
  const shop = await openShop(args);
  const runs = new Map<RowId, Run[]>(ROWS.map((r) => [r.id, []]));
  let rows: Row[];
  try {
    // Warm-up: connections open, statements prepared, JIT warm, tables and indexes in cache.
    const warm = Math.min(1000, args.durationMs);
    await runLoad(shop.rawUpsert, { concurrency: 64, durationMs: warm });
    await runLoad(orderOp(shop, 'query').op, { concurrency: 64, durationMs: warm });
    await runLoad(orderOp(shop, 'barrier').op, { concurrency: 64, durationMs: warm });
    await verify(shop, 'the warm-up');
    for (let i = 0; i < args.repeats; i++) {
      // The order of the five rows turns round every repeat, so a drift of the shared
      // machine's load colours each row alike.
      const sequence = i % 2 === 0 ? ROWS : [...ROWS].reverse();
      for (const spec of sequence) {
        const run = await measure(shop, spec.what, spec.concurrency, args.durationMs);
        runs.get(spec.id)!.push(run);
        progress(
          `run ${i + 1}/${args.repeats}  ${spec.name.padEnd(36)} ${int(run.txPerSec).padStart(7)} /s` +
            `  p50 ${fixed(run.p50Ms, 2).padStart(6)} ms  ${fixed(run.statementsPerOp, 2)} statements` +
            `  ${fixed(run.commitsPerOp, 2)} commits`,
        );
        // Outside the measured window, so its queries count for no row.
        if (spec.what !== 'raw') await verify(shop, `run ${i + 1} of ${spec.name}`, run);
      }
    }
    rows = ROWS.map((spec) =>
      rowOf(
        spec,
        runs.get(spec.id)!,
        spec.what === 'raw' ? undefined : runs.get(spec.concurrency === 1 ? 'raw-c1' : 'raw-c64'),
      ),
    );
  } finally {
    await shop.close();
  }
  const targets = targetsOf(rows);
  console.log(`\n${format(date, atStart, args, rows, targets)}`);
  reportAtAGlance(
    targets.map((t) => ({
      bench: 'place-order',
      row: rows.find((r) => r.id === t.row)?.name ?? t.row,
      figure: t.figure,
      target: t.text,
      ok: t.met,
    })),
  );
  if (args.save) {
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    const files = await saveResults(dir, 'place-order', date, {
      benchmark: 'place-order',
      date,
      machine: atStart,
      settings: {
        durationMs: args.durationMs,
        repeats: args.repeats,
        pgPoolSize: args.pool,
        users: USERS,
        overBudgetShare: 1 / OVER_BUDGET_EVERY,
      },
      rows,
      targets,
      orders: tally,
    });
    console.log(`saved ${files.join(', ')}`);
  }
  if (args.check && targets.some((t) => !t.met)) process.exit(1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
