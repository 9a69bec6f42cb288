import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// Figures are judged by `npm run bench`, never here: this only proves the benchmark still runs
// and that its own checks (the core books exact, each recovered record confirmed once) pass.
describe('npm run bench -- --quick', () => {
  it('builds, runs every row and exits 0', () => {
    const run = spawnSync('npm', ['run', 'bench', '--', '--quick', '--no-save'], {
      cwd: repoRoot,
      encoding: 'utf8',
      // Only a hang is cut off: on a loaded machine the smoke run takes minutes.
      timeout: 600_000,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    for (const row of ['memory c=1 tcc', 'memory c=1 plain', 'memory c=64 tcc', 'memory c=64 plain']) {
      expect(run.stdout).toContain(row);
    }
    expect(run.stdout).toMatch(/memory c=64 tcc 20k\s+20,000/);
    // The checks ran and passed: confirmed and cancelled add up, one transaction in five cancelled.
    for (const scenario of ['tcc rows', 'plain rows', 'heap run']) {
      expect(run.stdout).toMatch(new RegExp(`checked ${scenario}: [\\d,]+ confirmed \\+ [\\d,]+ cancelled`));
    }
    expect(run.stdout).toContain('checked heap run: 16,000 confirmed + 4,000 cancelled = 20,000 run');
    expect(run.stdout).toMatch(
      /checked: in each of the \d+ drains every one of the 500 records was confirmed exactly once/,
    );
    expect(run.stdout).toContain('postgres place-order c=64');
    // After the last benchmark, every one's targets in one table, with the host's plain rate.
    const glance = run.stdout.slice(run.stdout.indexOf('=== targets at a glance'));
    expect(glance).toMatch(/^=== targets at a glance \(--quick: smoke runs, not measurements\)\n/);
    // Its first row, under the header: the host's speed.
    expect(glance.split('\n')[2]).toMatch(/^core\s+memory c=64 plain \(the host\)\s+[\d,]+ tx\/s$/);
    for (const bench of ['core', 'http', 'place-order', 'recovery', 'storage']) {
      expect(glance).toMatch(new RegExp(`\\n${bench} .*(ok|MISS)\\n`));
    }
    // The footer counts the rows judged: every target line ends in ok or MISS.
    const judged = glance.match(/ (ok|MISS)\n/g) ?? [];
    const missed = judged.filter((verdict) => verdict.includes('MISS')).length;
    const footer =
      missed === 0 ? `all ${judged.length} targets met` : `${missed} of ${judged.length} targets missed`;
    expect(judged.length).toBeGreaterThanOrEqual(12);
    expect(glance).toContain(`\n${footer}\n`);
  }, 610_000);
});
