/**
 * `npm run bench -- http`: the three-service shop (order, capital, red packet: three processes,
 * PGlite each, keep-alive HTTP) at concurrency 32, paying orders through a TCC transaction
 * (`POST /orders`: two remote tries at once, the commit point, two remote confirms) next to the same
 * HTTP calls without tcc (`POST /orders-plain`: two plain payments). Fails if the shop's books do
 * not add up afterwards. Prints a table and saves it as JSON in bench/results (http-<date>.json,
 * http-latest.json). `--help` lists the options.
 */

import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reportAtAGlance, sharp } from './glance.js';
import { median, runLoad } from './harness.js';
import { parseBenchArgs } from './options.js';
import { machine } from './report.js';
import { deleteRedisKeys } from './servers.js';
import { checkBooks, type OrderAmounts } from './shop-books.js';

const USAGE = `usage: node bench/dist/http.bench.js [options]

  --quick            smoke run: one short run per row, nothing saved
  --duration <ms>    length of one run (default 5000, quick 500)
  --repeats <n>      runs per row, the median is reported (default 5, quick 1); each repeat
                     runs tcc and plain back to back (tcc first in even repeats, plain first
                     in odd ones), and tcc/plain is the median of those pairs' ratios
  --save / --no-save write bench/results/http-<date>.json and http-latest.json (default: save a full run)
  --log <where>      the services' transaction log: pglite (default, the embedded default),
                     redis (REDIS_URL, the business tables stay in PGlite), or memory (not
                     durable; shows the log's share of the cost)
  --check            exit with status 1 if tcc/plain is below the target
  The run always fails if the shop's books do not add up afterwards (money made or lost,
  anything left frozen or unfinished).
  --help`;

const CONCURRENCY = 32;
const TARGET_RATIO = 0.5;
const OPENING = 1_000_000_000;
/** What each order pays: cash from capital, vouchers from the red packet. */
const AMOUNTS: OrderAmounts = { capital: 3, 'red-packet': 1 };
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const args = parseBenchArgs(USAGE, {
  duration: { type: 'string' },
  repeats: { type: 'string' },
  log: { type: 'string' },
});
const log = args.values.log ?? 'pglite';
if (!['pglite', 'redis', 'memory'].includes(log))
  args.fail(`--log must be pglite, redis or memory, got ${JSON.stringify(log)}`);
const { quick } = args;
const durationMs = args.positive('duration', quick ? 500 : 5_000);
const repeats = args.positive('repeats', quick ? 1 : 5);
const save = args.save(!quick && log === 'pglite');

type Name = 'order' | 'capital' | 'red-packet';

function medianOf(values: readonly Record<Name, number>[]): Record<Name, number> {
  const names = ['order', 'capital', 'red-packet'] as const;
  return Object.fromEntries(names.map((n) => [n, median(values.map((v) => v[n]))])) as Record<Name, number>;
}
type Launch = (name: Name, env: NodeJS.ProcessEnv) => Promise<ChildProcess>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// The services are the examples' (compiled here, since `tsc -b bench` does not build them).
const build = spawnSync(
  process.execPath,
  [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b', 'examples'],
  {
    cwd: repoRoot,
    encoding: 'utf8',
  },
);
if (build.status !== 0) {
  console.error(`tsc -b examples failed:\n${build.stdout}${build.stderr}`);
  process.exit(1);
}
const { launch } = (await import(join(repoRoot, 'examples/dist/services/launch.js'))) as { launch: Launch };

const dataDir = await mkdtemp(join(tmpdir(), 'tcc-http-bench-'));
const urls = {} as Record<Name, string>;
for (const name of ['order', 'capital', 'red-packet'] as const)
  urls[name] = `http://127.0.0.1:${await freePort()}`;
const env = {
  ...process.env,
  SHOP_DATA: dataDir,
  TCC_SECRET: 'bench-secret-0123456789abcdefghij',
  SHOP_OPENING: JSON.stringify({ alice: OPENING }),
  SHOP_LOG: log,
  SHOP_REDIS_PREFIX: `tcc-http-bench:${process.pid}:`,
  SHOP_ORDER_URL: urls.order,
  // The smoke run proves the bench runs, on whatever load the machine has: no order may time out.
  ...(quick ? { SHOP_TIMEOUT_MS: '120000' } : {}),
  SHOP_CAPITAL_URL: urls.capital,
  SHOP_RED_PACKET_URL: urls['red-packet'],
};
const children: ChildProcess[] = [];
let failed = false;
try {
  for (const name of ['capital', 'red-packet', 'order'] as const) children.push(await launch(name, env));
  let next = 0;
  /** Orders answered 200: the books are checked against them at the end. */
  let paid = 0;
  const op = (mode: 'tcc' | 'plain') => async () => {
    const orderId = `b-${mode}-${next++}`;
    const response = await fetch(`${urls.order}/${mode === 'tcc' ? 'orders' : 'orders-plain'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        orderId,
        userId: 'alice',
        cash: AMOUNTS.capital,
        redPacket: AMOUNTS['red-packet'],
      }),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${mode} order ${orderId}: ${response.status} ${text}`);
    paid++;
  };
  // Warm-up: JIT, connection pools, PGlite caches.
  await runLoad(op('tcc'), { concurrency: CONCURRENCY, durationMs: quick ? 200 : 3_000 });
  await runLoad(op('plain'), { concurrency: CONCURRENCY, durationMs: quick ? 200 : 3_000 });
  type Stats = {
    statements: number;
    cpu: { user: number; system: number };
    requests: number;
    bytesIn: number;
    bytesOut: number;
  };
  // Each service's CPU time, SQL trips, requests and bytes, read before and after a run: per
  // order they depend far less than tx/s on what else the (shared) machine is running.
  const stats = async (): Promise<Record<Name, Stats>> =>
    Object.fromEntries(
      await Promise.all(
        (Object.keys(urls) as Name[]).map(async (name) => [
          name,
          (await (await fetch(`${urls[name]}/stats`)).json()) as Stats,
        ]),
      ),
    ) as Record<Name, Stats>;
  type Run = {
    txPerSec: number;
    p50Ms: number;
    p99Ms: number;
    cpuMsPerOrder: Record<Name, number>;
    statementsPerOrder: Record<Name, number>;
    /** Requests each service served per order (the stats reads taken out). */
    requestsPerOrder: Record<Name, number>;
    /** Bytes in and out of each service's connections per order. */
    bytesPerOrder: Record<Name, number>;
  };
  const runs: Record<'tcc' | 'plain', Run[]> = { tcc: [], plain: [] };
  for (let i = 0; i < repeats; i++) {
    // Each side goes first in every other repeat: neither always gets the machine as the other
    // one left it (caches, PGlite's files, a noisy neighbour ramping up).
    for (const mode of i % 2 === 0 ? (['tcc', 'plain'] as const) : (['plain', 'tcc'] as const)) {
      const before = await stats();
      const r = await runLoad(op(mode), { concurrency: CONCURRENCY, durationMs });
      const after = await stats();
      const per = (f: (s: Stats) => number) =>
        Object.fromEntries(
          (Object.keys(urls) as Name[]).map((name) => [name, (f(after[name]) - f(before[name])) / r.count]),
        ) as Record<Name, number>;
      runs[mode].push({
        txPerSec: r.count / (r.wallNs / 1e9),
        p50Ms: r.histogram.quantile(0.5) / 1e6,
        p99Ms: r.histogram.quantile(0.99) / 1e6,
        cpuMsPerOrder: per((s) => (s.cpu.user + s.cpu.system) / 1000),
        statementsPerOrder: per((s) => s.statements),
        // Less the `GET /stats` that read `after`: each read counts itself.
        requestsPerOrder: per((s) => s.requests - (Object.values(after).includes(s) ? 1 : 0)),
        bytesPerOrder: per((s) => s.bytesIn + s.bytesOut),
      });
    }
  }
  const row = (mode: 'tcc' | 'plain') => ({
    id: `c${CONCURRENCY}-${mode}`,
    name: `three services c=${CONCURRENCY} ${mode}${mode === 'tcc' ? ` (log: ${log})` : ''}`,
    txPerSec: median(runs[mode].map((r) => r.txPerSec)),
    p50Ms: median(runs[mode].map((r) => r.p50Ms)),
    p99Ms: median(runs[mode].map((r) => r.p99Ms)),
    cpuMsPerOrder: medianOf(runs[mode].map((r) => r.cpuMsPerOrder)),
    statementsPerOrder: medianOf(runs[mode].map((r) => r.statementsPerOrder)),
    requestsPerOrder: medianOf(runs[mode].map((r) => r.requestsPerOrder)),
    bytesPerOrder: medianOf(runs[mode].map((r) => r.bytesPerOrder)),
    runs: runs[mode],
  });
  // Figures of wrong work are worth nothing: the money must be where the orders put it.
  await checkBooks({
    orderUrl: urls.order,
    walletUrls: { capital: urls.capital, 'red-packet': urls['red-packet'] },
    opening: OPENING,
    user: 'alice',
    shop: 'shop',
    amounts: AMOUNTS,
    paid,
  });
  const rows = [row('tcc'), row('plain')];
  // Paired: each repeat's tcc and plain ran back to back, so a slow patch of the (shared)
  // machine weighs on both sides of the same ratio.
  const pairRatios = runs.tcc.map((r, i) => r.txPerSec / runs.plain[i]!.txPerSec);
  const ratio = median(pairRatios);
  const ok = ratio >= TARGET_RATIO;
  reportAtAGlance([
    {
      bench: 'http',
      row: `three services c=${CONCURRENCY}, tcc/plain`,
      figure: `${sharp(ratio, 2, TARGET_RATIO)} of plain`,
      target: `>= ${TARGET_RATIO}`,
      ok,
    },
  ]);
  const m = machine();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  console.log(`tcc http benchmark  ${date}`);
  console.log(`node ${m.node} | ${m.cpu} x ${m.cores} | load ${m.loadAverageAtStart.join(' ')}`);
  console.log(
    `three processes on loopback, PGlite each, keep-alive fetch; median of ${repeats} run(s) of ${durationMs / 1000} s` +
      `${quick ? ' | QUICK (smoke run, figures are rough)' : ''}\n`,
  );
  const names = ['order', 'capital', 'red-packet'] as const;
  const cells = rows.map((r) => [
    r.name,
    r.txPerSec.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    names.map((n) => r.cpuMsPerOrder[n].toFixed(2)).join(' / '),
    names.map((n) => r.statementsPerOrder[n].toFixed(1)).join(' / '),
    names.map((n) => r.requestsPerOrder[n].toFixed(2)).join(' / '),
    names.map((n) => (r.bytesPerOrder[n] / 1000).toFixed(1)).join(' / '),
  ]);
  const header = [
    'row',
    'tx/s',
    'p50 ms',
    'p99 ms',
    'cpu ms/order o/c/r',
    'sql/order o/c/r',
    'http req/order o/c/r',
    'kB/order o/c/r',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  for (const line of [header, ...cells]) {
    console.log(line.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  }
  const cpu = (r: (typeof rows)[number]) => names.reduce((sum, n) => sum + r.cpuMsPerOrder[n], 0);
  console.log(
    `\nCPU of the three services per order: tcc ${cpu(rows[0]!).toFixed(2)} ms, plain ${cpu(rows[1]!).toFixed(2)} ms` +
      ` (plain/tcc ${(cpu(rows[1]!) / cpu(rows[0]!)).toFixed(2)})`,
  );
  console.log(
    `tcc/plain throughput: ${ratio.toFixed(2)}, median of the runs' ratios ${pairRatios.map((r) => r.toFixed(2)).join(' / ')}` +
      ` (target >= ${TARGET_RATIO}): ${ok ? 'ok' : 'MISS'}`,
  );
  console.log(`books: ${paid} paid orders, money conserved in both wallets, nothing frozen or unfinished`);
  if (save) {
    const dir = join(repoRoot, 'bench/results');
    await mkdir(dir, { recursive: true });
    const report = JSON.stringify(
      {
        benchmark: 'http',
        date,
        machine: m,
        settings: { quick, durationMs, repeats, concurrency: CONCURRENCY },
        rows,
        ratio,
        pairRatios,
        paidOrders: paid,
        booksChecked: true,
        target: TARGET_RATIO,
        ok,
      },
      null,
      2,
    );
    await writeFile(join(dir, `http-${date.replace(/:/g, '-')}.json`), report);
    await writeFile(join(dir, 'http-latest.json'), report);
    console.log(`saved bench/results/http-${date.replace(/:/g, '-')}.json`);
  }
  if (args.check && !ok) failed = true;
} catch (error) {
  console.error(error);
  failed = true;
} finally {
  for (const child of children) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
  if (log === 'redis') await deleteRedisKeys(env.SHOP_REDIS_PREFIX);
}

process.exit(failed ? 1 : 0);
