import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const DEMO_TIMEOUT_MS = 120_000;

// One real run of `npm run demo` (build included), shared by the assertions below.
let run: SpawnSyncReturns<string>;
let output: string;

beforeAll(() => {
  run = spawnSync('npm', ['run', 'demo'], { cwd: repoRoot, encoding: 'utf8', timeout: DEMO_TIMEOUT_MS });
  output = `${run.stdout}\n${run.stderr}`;
}, DEMO_TIMEOUT_MS + 10_000);

describe('npm run demo (the shop example)', () => {
  it('builds, runs and exits 0', () => {
    expect(run.error, output).toBeUndefined();
    expect(run.status, output).toBe(0);
  });

  it('confirms an order paid with cash and a red packet', () => {
    expect(run.stdout).toContain('order o-1: CONFIRMED  capital alice 100 -> 70  red packet alice 20 -> 10');
  });

  it('cancels both tries of an order over the capital balance and reports the error', () => {
    expect(run.stdout).toContain('capital.try! capital.cancel red-packet.cancel order.cancel');
    expect(run.stdout).toContain(
      'the caller got InsufficientFundsError: capital: bob has 50, order o-2 needs 80',
    );
    expect(run.stdout).toContain('order o-2: CANCELLED  capital bob 50 -> 50  red packet bob 10 -> 10');
  });

  it('leaves a failed confirm CONFIRMING and lets recovery finish it', () => {
    expect(run.stdout).toContain('the caller got TCC_CONFIRM_FAILED');
    expect(run.stdout).toMatch(/left in storage: ROOT \S+ CONFIRMING \[[^\]]*red-packet\.use TRYING/);
    expect(run.stdout).toContain('recovery ran: red-packet.confirm capital.confirm');
    expect(run.stdout).toContain('finished by recovery');
    expect(run.stdout).toMatch(
      /order o-3: CONFIRMED {2}capital alice 70 -> 50 {2}red packet alice 10 -> 5\n/,
    );
  });

  it('finds the money conserved and no transaction left', () => {
    expect(run.stdout).toContain('balances add up');
    expect(run.stdout).toContain('no transaction record left in storage');
    expect(run.stderr).not.toContain('Something is wrong');
  });
});

describe('a demo run killed halfway (SIGKILL at its commit point)', () => {
  it(
    'is finished by the next run, from the log PGlite kept on disk',
    () => {
      expect(run.status, output).toBe(0); // examples/dist is built by the run above
      const data = mkdtempSync(join(tmpdir(), 'tcc-demo-'));
      try {
        const env = { ...process.env, TCC_DEMO_DATA: data };
        const crash = spawnSync(process.execPath, [`${repoRoot}test/fixtures/demo-crash.mjs`], {
          env,
          encoding: 'utf8',
          timeout: DEMO_TIMEOUT_MS,
        });
        expect(crash.signal, `${crash.stdout}\n${crash.stderr}`).toBe('SIGKILL');

        const next = spawnSync(process.execPath, [`${repoRoot}examples/dist/shop/main.js`], {
          env,
          encoding: 'utf8',
          timeout: DEMO_TIMEOUT_MS,
        });
        const text = `${next.stdout}\n${next.stderr}`;
        expect(next.status, text).toBe(0);
        expect(next.stdout).toContain(`found 1 transaction(s) left by a previous run in ${data}`);
        expect(next.stdout).toMatch(/ {2}\S+ \(CONFIRMING\): confirmed\n/);
        // The killed run had confirmed nothing for good: all three confirms run again.
        expect(next.stdout).toContain('steps: order.confirm red-packet.confirm capital.confirm');
        expect(next.stdout).toContain('no transaction record left in storage');
      } finally {
        rmSync(data, { recursive: true, force: true });
      }
    },
    2 * DEMO_TIMEOUT_MS,
  );
});
