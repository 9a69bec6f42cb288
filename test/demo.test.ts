import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
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
