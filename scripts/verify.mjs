#!/usr/bin/env node
// `npm run verify`: model-checks the protocol model in spec/ with SPIN, then checks that each
// deliberately broken variant of it is caught. Builds in the OS temp directory, never in the
// repository. Exits non-zero if a property fails, or if a broken variant is NOT caught.
//
// Flags: --only <name>[,<name>...] runs those checks; --list prints them; --keep leaves the
// build directory (and any trail) for `spin -t -p`; --deep gives the bitstate searches 2^30 bits
// instead of 2^25 (minutes, not seconds: more of the state space); --long then also runs the
// long run of the runtime's property tests (test/protocol-property.test.ts, ten times the runs
// of `npm test`'s). Any other flag is ignored.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const model = join(root, 'spec', 'tcc.pml');

// Fault budgets per run: the whole model at once is more than this machine checks in minutes,
// so the network's faults and the store's are checked in separate runs (both with crashes).
const NETWORK = ['-DFAILOVER_MAX=0', '-DACKFAIL_MAX=0'];
const STORE = ['-DLOSS_MAX=0', '-DDUP_MAX=0'];
// Bitstate (supertrace) search: a fixed 2^27-bit array; the hash factor says how much of the
// state space it may have missed (see docs/protocol.md).
const BITSTATE = ['-DBITSTATE'];
// A broken variant is run with the fewest faults that reach its break: a counterexample soon.
const QUIET = ['-DNO_OPERATOR', '-DLOSS_MAX=0', '-DDUP_MAX=0', '-DCRASH_MAX=0', ...NETWORK];
const W = process.argv.includes('--deep') ? '-w30' : '-w25';

const checks = [
  {
    name: 'safety-network',
    what: 'P1-P5 (assertions) with lost, duplicated, delayed, reordered messages and a crash',
    defines: NETWORK,
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'pass',
  },
  {
    name: 'safety-store',
    what: 'P1-P5 (assertions) with a lagging replica, a failover, an unacknowledged write and a crash',
    defines: STORE,
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'pass',
  },
  {
    name: 'liveness',
    what: 'P6 <>[] settled under weak fairness, once the (bounded) losses have happened',
    defines: [
      '-DLIVENESS',
      '-DNO_OPERATOR',
      '-DCRASH_MAX=0',
      '-DFAILOVER_MAX=0',
      '-DACKFAIL_MAX=0',
      '-DDUP_MAX=0',
    ],
    cc: ['-DNOREDUCE', '-DNFAIR=4', ...BITSTATE],
    pan: ['-a', '-f', '-m8000', W],
    expect: 'pass',
  },
  {
    name: 'broken-unclaimed-confirm',
    what: 'a command handler settles a CONFIRMING branch without claiming it: P2 must fail',
    defines: ['-DBUG_UNCLAIMED_CONFIRM', ...QUIET],
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'fail',
  },
  {
    name: 'broken-no-tombstone',
    what: 'a cancel of an unknown branch leaves no tombstone: P3 must fail',
    defines: ['-DBUG_NO_TOMBSTONE', '-DCRASH_MAX=0', '-DDUP_MAX=0', '-DNO_OPERATOR', ...NETWORK],
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'fail',
  },
  {
    name: 'broken-confirm-unacked',
    what: 'the root confirms after its commit point timed out waiting for the replica: P4 must fail',
    defines: ['-DBUG_CONFIRM_UNACKED', '-DCRASH_MAX=0', '-DNO_OPERATOR', ...STORE],
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'fail',
  },
  {
    name: 'broken-unclaimed-try',
    what:
      'a try holds no claim on its record, so a cancel from another process runs while the try ' +
      'can still start its participant: P3 must fail',
    defines: ['-DBUG_UNCLAIMED_TRY', '-DCRASH_MAX=0', '-DDUP_MAX=0', '-DNO_OPERATOR', ...NETWORK],
    cc: ['-DSAFETY', ...BITSTATE],
    pan: ['-m4000', W],
    expect: 'fail',
  },
];

const args = process.argv.slice(2);
if (args.includes('--list')) {
  for (const c of checks) console.log(`${c.name.padEnd(28)} expect ${c.expect}: ${c.what}`);
  process.exit(0);
}
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : undefined;
const keep = args.includes('--keep');

function run(cmd, argv, cwd) {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `run`, without blocking: the checks are independent, so they run side by side. */
function runAsync(cmd, argv, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

if (run('sh', ['-c', 'command -v spin && command -v gcc'], root).code !== 0) {
  console.error('[verify] spin and gcc are needed (Debian/Ubuntu: apt-get install -y spin gcc)');
  process.exit(2);
}

const num = (out, re) => (out.match(re)?.[1] ?? '?').trim();
let failed = 0;
const started = Date.now();

/** Runs one check; returns what it prints and whether it went as expected. */
async function check(c) {
  const lines = [];
  const dir = mkdtempSync(join(tmpdir(), `tcc-verify-${c.name}-`));
  const t0 = Date.now();
  let res = await runAsync('spin', [...c.defines, '-a', model], dir);
  if (res.code !== 0) return { ok: false, lines: [`[verify] ${c.name}: spin -a failed\n${res.out}`] };
  res = await runAsync('gcc', ['-O2', '-w', ...c.cc, '-o', 'pan', 'pan.c'], dir);
  if (res.code !== 0) return { ok: false, lines: [`[verify] ${c.name}: gcc failed\n${res.out}`] };
  res = await runAsync('./pan', c.pan, dir);
  const errors = Number(num(res.out, /errors:\s*(\d+)/));
  const stats = {
    states: num(res.out, /([\d.e+]+) states, stored/),
    depth: num(res.out, /depth reached (\d+)/),
    time: `${((Date.now() - t0) / 1000).toFixed(1)}s`,
    errors,
  };
  const hf = res.out.match(/hash factor: ([\d.e+]+)/)?.[1];
  const found = errors > 0 || existsSync(join(dir, 'tcc.pml.trail'));
  const ok = c.expect === 'pass' ? !found && !Number.isNaN(errors) : found;
  const verdict = ok
    ? c.expect === 'pass'
      ? 'ok'
      : 'ok (counterexample found, as expected)'
    : c.expect === 'pass'
      ? 'FAILED'
      : 'FAILED (no counterexample: the check does not catch this break)';
  lines.push(
    `[verify] ${c.name.padEnd(28)} ${verdict}\n` +
      `         ${c.what}\n` +
      `         states ${stats.states}, depth ${stats.depth}, errors ${errors}, time ${stats.time}` +
      (hf ? `, hash factor ${hf}` : ''),
  );
  const why = res.out.match(/pan:\d+:\s*(.*)/)?.[1];
  if (found && why) lines.push(`         first error: ${why}`);
  if (!ok && found) lines.push(`         trail: cd ${dir} && spin ${c.defines.join(' ')} -t -p ${model}`);
  if (!keep && ok) rmSync(dir, { recursive: true, force: true });
  else lines.push(`         kept: ${dir}`);
  return { ok, lines };
}

// One check per core at a time (each is one single-threaded gcc, then one pan); the results
// are printed in the table's order, each as soon as it and those before it are done.
const chosen = checks.filter((c) => only === undefined || only.has(c.name));
const results = new Array(chosen.length);
let next = 0;
const worker = async () => {
  while (next < chosen.length) {
    const i = next++;
    results[i] = check(chosen[i]);
    await results[i];
  }
};
const pool = Array.from({ length: Math.max(1, Math.min(availableParallelism(), chosen.length)) }, worker);
for (let i = 0; i < chosen.length; i++) {
  while (results[i] === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  const { ok, lines } = await results[i];
  for (const line of lines) console.log(line);
  if (!ok) failed++;
}
await Promise.all(pool);
if (args.includes('--long')) {
  console.log('[verify] the long run of the property tests (npm run test:properties:long)');
  const r = spawnSync('npm', ['run', 'test:properties:long'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.log('[verify] property tests: FAILED (their seeds are printed above)');
    failed++;
  }
}
console.log(
  `[verify] ${failed === 0 ? 'all checks as expected' : `${failed} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)}s`,
);
process.exit(failed === 0 ? 0 : 1);
