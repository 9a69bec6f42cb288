/**
 * `npm run bench -- storage`: a root transaction with two local participants at concurrency 64
 * on Redis (the machine's server), Redis Cluster (3 throwaway masters) and PostgreSQL (the
 * machine's server), each next to the raw round-trip rate of the same client on the same
 * server, measured in the same run. The table shows tcc's rate against the limit that raw rate
 * sets: raw rate ÷ store writes per transaction (counted at the store's methods, not assumed).
 * One raw operation is one write of the store's own shape in one round trip, so a store that
 * sends several writes in one round trip (PostgreSQL's batch of a turn) can pass its limit.
 * `--help` lists the options.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TransactionStorage } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { SqlStorage } from '@tcc/storage-sql';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { startCluster } from '../../test/support/dist/redis-servers.js';
import { reportAtAGlance, sharp } from './glance.js';
import { type LoadResult, median, runLoad } from './harness.js';
import { parseBenchArgs } from './options.js';
import { fixed, int, machine, saveResults, table, verdict } from './report.js';
import { tccScenario } from './scenario.js';
import { deleteKeys, openSchema, REDIS_URL } from './servers.js';
import { storeWritesOp } from './store-writes.js';

const USAGE = `usage: node bench/dist/storage.bench.js [options]

  --quick            smoke run: one short run per row, nothing saved
  --only <stores>    comma-separated: redis, cluster, postgres; nothing saved
  --duration <ms>    length of one run of a row (default 3000, quick 300)
  --repeats <n>      runs per row, the median is reported (default 3, quick 1)
  --pg-pool <n>      connections of the pg.Pool both PostgreSQL rows share (default 8: a few
                     per core of this 2-core machine, where more only adds contention)
  --save / --no-save write bench/results/storage-<date>.json and storage-latest.json
                     (default: save a full run)
  --check            exit with status 1 if a target is missed
  --help

servers: REDIS_URL (default redis://127.0.0.1:6379), DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/test); the cluster is started on free loopback ports.`;

const CONCURRENCY = 64;
const REDIS_TARGET_TX_PER_SEC = 20_000;
const REDIS_TARGET_RATIO = 0.8;
const POSTGRES_TARGET_RATIO = 0.8;
const STORES = ['redis', 'cluster', 'postgres'] as const;
type StoreId = (typeof STORES)[number];

interface Args {
  readonly quick: boolean;
  readonly only: readonly StoreId[];
  readonly durationMs: number;
  readonly repeats: number;
  readonly pgPool: number;
  readonly save: boolean;
  readonly check: boolean;
}

function parse(argv: readonly string[]): Args {
  const args = parseBenchArgs(
    USAGE,
    {
      only: { type: 'string' },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      'pg-pool': { type: 'string' },
    },
    argv,
  );
  const only = args.values.only?.split(',').map((s) => s.trim()) ?? [...STORES];
  const unknown = only.filter((s) => !(STORES as readonly string[]).includes(s));
  if (unknown.length > 0)
    args.fail(`--only: unknown store ${unknown.join(', ')} (stores: ${STORES.join(', ')})`);
  const { quick } = args;
  return {
    quick,
    only: only as StoreId[],
    durationMs: args.positive('duration', quick ? 300 : 3000),
    repeats: args.positive('repeats', quick ? 1 : 3),
    pgPool: args.positive('pg-pool', 8),
    save: args.save(!quick && args.values.only === undefined),
    check: args.check,
  };
}

// ---------------------------------------------------------------------------------------------
// Round trips are counted where the clients send them: every command an ioredis connection
// writes (a Cluster sends through one Redis connection per node), every query a pg connection
// sends. Each is one request answered by one reply; RedisStorage lets the commands of one tick
// leave a standalone connection in one socket write, which this count does not see (nor needs
// to: the server still runs each).

const sent = { count: 0 };

function countRoundTrips(): void {
  const redisSend = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
    sent.count++;
    return redisSend.apply(this, args);
  };
  const pgQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    sent.count++;
    return pgQuery.apply(this, args);
  };
}

// ---------------------------------------------------------------------------------------------
// Stores

/** One store under test: its transaction log, and the raw round trip it is measured against. */
interface Subject {
  readonly id: StoreId;
  /** What the raw row does, for the table. */
  readonly raw: string;
  readonly storage: TransactionStorage;
  readonly rawOp: () => Promise<unknown>;
  close(): Promise<void>;
}

const RAW_KEYS = 1024;

/**
 * The raw Redis operation the store is measured against has the shape of the store's own
 * writes: one script that reads a record hash's version, writes it back with a ~600-byte
 * record, and indexes it in a sorted set, two keys of one slot. A plain `SET` set a limit no
 * store of records could reach, so the ratio said little about the store's own overhead.
 */
const STORE_SHAPED_RAW = 'CAS script: 600-byte hash + sorted-set entry';
const RECORD_JSON = JSON.stringify({ pad: 'x'.repeat(580) });
const STORE_SHAPED_LUA = `
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
redis.call('HSET', KEYS[1], 'v', version + 1, 'r', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return version + 1`;

function storeShapedWrite(
  client: Redis | Cluster,
  keyOf: (i: number) => string,
  next: () => number,
): () => Promise<unknown> {
  client.defineCommand('benchCas', { numberOfKeys: 2, lua: STORE_SHAPED_LUA });
  const cas = (client as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)
    .benchCas!;
  return () => {
    const i = next() % RAW_KEYS;
    const key = keyOf(i);
    return cas.call(client, `${key}:h`, `${key}:z`, RECORD_JSON, Date.now(), `x${i}`);
  };
}

async function openRedis(_args: Args): Promise<Subject> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await client.ping().catch((error: Error) => {
    client.disconnect();
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${error.message}): start it or set REDIS_URL`);
  });
  const prefix = `tcc-bench:${process.pid}:${randomBytes(3).toString('hex')}:`;
  let n = 0;
  return {
    id: 'redis',
    raw: STORE_SHAPED_RAW,
    storage: new RedisStorage({ client, prefix }),
    rawOp: storeShapedWrite(
      client,
      (i) => `${prefix}raw:{${i}}`,
      () => n++,
    ),
    async close() {
      await deleteKeys(client, prefix);
      client.disconnect();
    },
  };
}

async function openCluster(_args: Args): Promise<Subject> {
  const servers = await startCluster(3);
  const client = new Cluster(
    servers.servers.map((s) => ({ host: s.host, port: s.port })),
    { redisOptions: { maxRetriesPerRequest: 1 } },
  );
  await client.ping();
  let n = 0;
  return {
    id: 'cluster',
    raw: `${STORE_SHAPED_RAW} (keys over all slots)`,
    storage: new RedisStorage({ client, prefix: 'tcc-bench:' }),
    rawOp: storeShapedWrite(
      client,
      (i) => `raw:{${i}}`,
      () => n++,
    ),
    async close() {
      client.disconnect();
      await servers.stop();
    },
  };
}

async function openPostgres(args: Args): Promise<Subject> {
  const schema = `tcc_bench_${process.pid}`;
  const pool = await openSchema(args.pgPool, schema);
  await pool.query(`CREATE TABLE ${schema}.raw (k int PRIMARY KEY, v text NOT NULL)`);
  const storage = new SqlStorage({ client: pool, schema });
  await storage.migrate();
  const upsert = {
    name: 'tcc-bench-raw-upsert',
    text: `INSERT INTO ${schema}.raw (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
  };
  let n = 0;
  return {
    id: 'postgres',
    raw: `single-row upsert (pool of ${args.pgPool})`,
    storage,
    rawOp: () => pool.query({ ...upsert, values: [n++ % RAW_KEYS, 'x'] }),
    async close() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}

const OPENERS: Record<StoreId, (args: Args) => Promise<Subject>> = {
  redis: openRedis,
  cluster: openCluster,
  postgres: openPostgres,
};

// ---------------------------------------------------------------------------------------------
// Measuring

interface Run {
  readonly txPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly roundTripsPerOp: number;
  /** Store writes (create, update, complete, remove) per operation. */
  readonly writesPerOp: number;
  /** CPU of this process (the client side: tcc, the driver, the event loop) per operation. */
  readonly cpuUsPerOp: number;
}

interface Row {
  readonly store: StoreId;
  readonly raw: string;
  readonly tcc: Run;
  readonly rawRun: Run;
  /** The scenario's four store writes without the SDK (`store-writes.ts`). */
  readonly writesRun: Run;
  /** rawRun.txPerSec ÷ tcc.writesPerOp */
  readonly limitTxPerSec: number;
  /** tcc.txPerSec ÷ limitTxPerSec */
  readonly ratioToLimit: number;
  readonly runs: {
    readonly tcc: readonly Run[];
    readonly raw: readonly Run[];
    readonly writes: readonly Run[];
  };
}

async function measure(op: () => Promise<unknown>, durationMs: number, writes: Counter): Promise<Run> {
  const before = sent.count;
  const writesBefore = writes.count;
  const result: LoadResult = await runLoad(op, { concurrency: CONCURRENCY, durationMs });
  return {
    txPerSec: result.count / (result.wallNs / 1e9),
    p50Us: result.histogram.quantile(0.5) / 1000,
    p99Us: result.histogram.quantile(0.99) / 1000,
    roundTripsPerOp: (sent.count - before) / result.count,
    writesPerOp: (writes.count - writesBefore) / result.count,
    cpuUsPerOp: result.cpuUs / result.count,
  };
}

function medianRun(runs: readonly Run[]): Run {
  return {
    txPerSec: median(runs.map((r) => r.txPerSec)),
    p50Us: median(runs.map((r) => r.p50Us)),
    p99Us: median(runs.map((r) => r.p99Us)),
    roundTripsPerOp: median(runs.map((r) => r.roundTripsPerOp)),
    writesPerOp: median(runs.map((r) => r.writesPerOp)),
    cpuUsPerOp: median(runs.map((r) => r.cpuUsPerOp)),
  };
}

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

async function benchStore(id: StoreId, args: Args): Promise<Row> {
  const subject = await OPENERS[id](args);
  const writes = countWrites(subject.storage);
  const scenario = tccScenario(subject.storage);
  const ops = { raw: subject.rawOp, tcc: scenario.op, writes: storeWritesOp(subject.storage, 'bench') };
  try {
    // Warm-up: connections open, scripts loaded, statements prepared, JIT warm.
    const warm = Math.min(1000, args.durationMs);
    for (const op of Object.values(ops)) await runLoad(op, { concurrency: CONCURRENCY, durationMs: warm });
    const runs = { raw: [] as Run[], tcc: [] as Run[], writes: [] as Run[] };
    for (let i = 0; i < args.repeats; i++) {
      // Turning the order round, so a drift of the machine's load colours each alike.
      const order = i % 2 === 0 ? (['raw', 'tcc', 'writes'] as const) : (['writes', 'tcc', 'raw'] as const);
      for (const what of order) {
        const run = await measure(ops[what], args.durationMs, writes);
        runs[what].push(run);
        progress(
          `run ${i + 1}/${args.repeats}  ${id.padEnd(8)} ${what.padEnd(6)} ${int(run.txPerSec).padStart(8)} /s` +
            `  p99 ${fixed(run.p99Us).padStart(8)} µs  ${fixed(run.roundTripsPerOp, 2)} round trips`,
        );
      }
    }
    scenario.books.check(`${id} tcc`);
    const left = await subject.storage.count({ domain: 'bench' });
    if (left !== 0) throw new Error(`${id}: ${left} transaction records left in storage after the run`);
    const tcc = medianRun(runs.tcc);
    const rawRun = medianRun(runs.raw);
    const writesRun = medianRun(runs.writes);
    if (tcc.writesPerOp < 1) throw new Error(`${id}: ${tcc.writesPerOp} store writes per transaction`);
    if (writesRun.writesPerOp !== 4) {
      throw new Error(`${id}: ${writesRun.writesPerOp} store writes per run of the writes alone, not 4`);
    }
    const limitTxPerSec = rawRun.txPerSec / tcc.writesPerOp;
    return {
      store: id,
      raw: subject.raw,
      tcc,
      rawRun,
      writesRun,
      limitTxPerSec,
      ratioToLimit: tcc.txPerSec / limitTxPerSec,
      runs,
    };
  } finally {
    await scenario.close();
    await subject.storage.close();
    await subject.close();
  }
}

interface Target {
  readonly row: StoreId;
  readonly text: string;
  /** The figure judged, with its unit. */
  readonly figure: string;
  readonly met: boolean;
}

function targetsOf(rows: readonly Row[]): Target[] {
  const targets: Target[] = [];
  for (const row of rows) {
    if (row.store === 'redis') {
      targets.push({
        row: 'redis',
        text: `>= ${int(REDIS_TARGET_TX_PER_SEC)} tx/s`,
        figure: `${sharp(row.tcc.txPerSec, 0, REDIS_TARGET_TX_PER_SEC)} tx/s`,
        met: row.tcc.txPerSec >= REDIS_TARGET_TX_PER_SEC,
      });
      targets.push({
        row: 'redis',
        text: `>= ${REDIS_TARGET_RATIO} of limit`,
        figure: `${sharp(row.ratioToLimit, 2, REDIS_TARGET_RATIO)} of limit`,
        met: row.ratioToLimit >= REDIS_TARGET_RATIO,
      });
    }
    if (row.store === 'postgres') {
      targets.push({
        row: 'postgres',
        text: `>= ${POSTGRES_TARGET_RATIO} of limit`,
        figure: `${sharp(row.ratioToLimit, 2, POSTGRES_TARGET_RATIO)} of limit`,
        met: row.ratioToLimit >= POSTGRES_TARGET_RATIO,
      });
    }
  }
  return targets;
}

function format(date: string, args: Args, rows: readonly Row[], targets: readonly Target[]): string {
  const m = machine();
  const body = rows.map((r) => {
    const mine = targets.filter((t) => t.row === r.store);
    return [
      `${r.store} c=${CONCURRENCY}`,
      int(r.tcc.txPerSec),
      fixed(r.tcc.p50Us),
      fixed(r.tcc.p99Us),
      fixed(r.tcc.roundTripsPerOp, 2),
      fixed(r.tcc.writesPerOp, 2),
      fixed(r.tcc.cpuUsPerOp),
      int(r.rawRun.txPerSec),
      int(r.limitTxPerSec),
      fixed(r.ratioToLimit, 2),
      mine.length === 0 ? '–' : mine.map((t) => `${t.text}: ${verdict(t.met)}`).join(', '),
    ];
  });
  const raws = rows.map((r) => [
    r.store,
    r.raw,
    int(r.rawRun.txPerSec),
    fixed(r.rawRun.p50Us),
    fixed(r.rawRun.p99Us),
    fixed(r.rawRun.cpuUsPerOp),
  ]);
  const alone = rows.map((r) => [
    r.store,
    int(r.writesRun.txPerSec),
    fixed(r.writesRun.cpuUsPerOp),
    fixed(r.writesRun.cpuUsPerOp / r.writesRun.writesPerOp),
    fixed(r.rawRun.cpuUsPerOp),
    fixed(r.tcc.cpuUsPerOp - r.writesRun.cpuUsPerOp),
  ]);
  return [
    `tcc storage benchmark  ${date}`,
    `node ${m.node} | ${m.cpu} x ${m.cores} | ${m.os} | load ${m.loadAverageAtStart.join(' ')}`,
    `each figure: median of ${args.repeats} runs of ${args.durationMs / 1000} s at concurrency ${CONCURRENCY}, tcc, raw and the writes alone alternating`,
    '',
    table(
      [
        'row',
        'tx/s',
        'p50 µs',
        'p99 µs',
        'round trips/tx',
        'writes/tx',
        'client CPU µs/tx',
        'raw/s',
        'limit tx/s',
        'tcc/limit',
        'target',
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      body,
    ),
    '',
    table(
      ['raw', 'operation', 'ops/s', 'p50 µs', 'p99 µs', 'client CPU µs/op'],
      ['l', 'l', 'r', 'r', 'r', 'r'],
      raws,
    ),
    '',
    table(
      ['writes alone', 'tx/s', 'client CPU µs/tx', 'µs/write', 'raw µs/op', 'tcc − writes alone µs/tx'],
      ['l', 'r', 'r', 'r', 'r', 'r'],
      alone,
    ),
    '',
    `targets: ${targets.filter((t) => t.met).length} of ${targets.length} met`,
    'limit = raw ops/s ÷ store writes per transaction (counted at the store); tcc/limit = tx/s ÷ limit.',
    "writes alone: the scenario's four store writes on records of its shape, without the SDK; tcc − writes alone: the SDK's share of a transaction's client CPU.",
  ].join('\n');
}

interface Counter {
  count: number;
}

/**
 * Counts the store's writes: the limit is set per write, since one raw operation is one write
 * (a round trip can carry several of the store's, or a write several round trips).
 */
function countWrites(storage: TransactionStorage): Counter {
  const counter: Counter = { count: 0 };
  const writes = storage as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of ['create', 'update', 'complete', 'remove'] as const) {
    const write = writes[name]!.bind(storage);
    writes[name] = (...args) => {
      counter.count++;
      return write(...args);
    };
  }
  return counter;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  countRoundTrips();
  const date = new Date().toISOString();
  const rows: Row[] = [];
  for (const id of args.only) rows.push(await benchStore(id, args));
  const targets = targetsOf(rows);
  console.log(`\n${format(date, args, rows, targets)}`);
  reportAtAGlance(
    targets.map((t) => ({
      bench: 'storage',
      row: `${t.row} c=${CONCURRENCY}`,
      figure: t.figure,
      target: t.text,
      ok: t.met,
    })),
  );
  if (args.save) {
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    const files = await saveResults(dir, 'storage', date, {
      benchmark: 'storage',
      date,
      machine: machine(),
      settings: {
        concurrency: CONCURRENCY,
        durationMs: args.durationMs,
        repeats: args.repeats,
        pgPoolSize: args.pgPool,
      },
      rows,
      targets,
    });
    console.log(`saved ${files.join(', ')}`);
  }
  if (args.check && targets.some((t) => !t.met)) process.exit(1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
