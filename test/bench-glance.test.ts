import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GLANCE_FILE_ENV,
  type GlanceLine,
  glanceTable,
  reportAtAGlance,
  sharp,
} from '../bench/src/glance.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tcc-glance-'));
  file = join(dir, 'targets.jsonl');
});
afterEach(() => {
  delete process.env[GLANCE_FILE_ENV];
  rmSync(dir, { recursive: true, force: true });
});

const line = (l: GlanceLine) => `${JSON.stringify(l)}\n`;

describe('sharp: a figure shown beside its target', () => {
  it('keeps the digits asked for when they do not round onto the target', () => {
    expect(sharp(0.8551, 2, 0.8)).toBe('0.86');
    expect(sharp(24_686.6, 0, 50_000)).toBe('24,687');
    expect(sharp(0.5, 2, 0.5)).toBe('0.50');
  });

  it('adds digits where the rounded figure would read as the target itself', () => {
    expect(sharp(0.4996, 2, 0.5)).toBe('0.4996');
    expect(sharp(20.004, 2, 20)).toBe('20.004');
    expect(sharp(19_999.6, 0, 20_000)).toBe('19,999.6');
  });

  it('shows a figure that is not a number as a dash', () => {
    expect(sharp(Number.NaN, 3, 0.15)).toBe('–');
  });
});

describe('glanceTable', () => {
  it("puts the host's line first, marks each target, and counts the misses", () => {
    writeFileSync(
      file,
      line({
        bench: 'core',
        row: 'memory c=64 tcc',
        figure: '9,301 tx/s',
        target: '>= 50,000 tx/s',
        ok: false,
      }) +
        line({ bench: 'core', row: 'memory c=64 plain (the host)', figure: '253,680 tx/s', target: '' }) +
        line({ bench: 'http', row: 'three services', figure: '0.51 of plain', target: '>= 0.5', ok: true }),
    );

    const rows = glanceTable(file)!.split('\n');

    expect(rows[0]).toBe('targets at a glance');
    expect(rows[1]).toMatch(/^benchmark\s+row\s+figure\s+target$/);
    expect(rows[2]).toMatch(/^core\s+memory c=64 plain \(the host\)\s+253,680 tx\/s$/);
    expect(rows[3]).toMatch(/^core\s+memory c=64 tcc\s+9,301 tx\/s\s+>= 50,000 tx\/s\s+MISS$/);
    expect(rows[4]).toMatch(/^http\s+three services\s+0\.51 of plain\s+>= 0\.5\s+ok$/);
    expect(rows[5]).toBe('1 of 2 targets missed');
    expect(rows).toHaveLength(6);
  });

  it('shows a benchmark that exited with an error as a miss, even one that reported nothing', () => {
    writeFileSync(
      file,
      line({ bench: 'http', row: 'three services', figure: '0.51', target: '>= 0.5', ok: true }),
    );

    const table = glanceTable(file, ['storage'])!;

    expect(table).toMatch(/\nstorage\s+–\s+exited with an error\s+MISS\n/);
    expect(table.endsWith('\n1 of 2 targets missed')).toBe(true);
    expect(glanceTable(join(dir, 'none.jsonl'), ['core'])).toMatch(
      /\ncore\s+–\s+exited with an error\s+MISS\n1 of 1 targets missed$/,
    );
  });

  it('skips a line cut short by a killed benchmark, and says when nothing was judged', () => {
    writeFileSync(
      file,
      `${line({ bench: 'core', row: 'memory c=64 plain (the host)', figure: '1 tx/s', target: '' })}{"bench":"stor`,
    );

    const table = glanceTable(file)!;

    expect(table).not.toContain('stor\n');
    expect(table.endsWith('\nno targets judged')).toBe(true);
  });

  it('has nothing to show when no benchmark reported and none failed', () => {
    expect(glanceTable(join(dir, 'none.jsonl'))).toBeUndefined();
    writeFileSync(file, '');
    expect(glanceTable(file)).toBeUndefined();
  });
});

describe('reportAtAGlance', () => {
  const target: GlanceLine = {
    bench: 'recovery',
    row: 'drain',
    figure: '5,347 records/s',
    target: '>= 5,000',
    ok: true,
  };

  it('appends the lines to the file npm run bench names', () => {
    process.env[GLANCE_FILE_ENV] = file;
    appendFileSync(file, line({ bench: 'core', row: 'host (the host)', figure: '1 tx/s', target: '' }));

    reportAtAGlance([target]);

    expect(glanceTable(file)).toMatch(
      /\nrecovery\s+drain\s+5,347 records\/s\s+>= 5,000\s+ok\nall 1 targets met$/,
    );
  });

  it('writes nothing for a benchmark run alone', () => {
    reportAtAGlance([target]);

    expect(existsSync(file)).toBe(false);
  });
});
