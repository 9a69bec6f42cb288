import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SCRIPTS } from '../src/scripts.js';

/*
 * The store runs the scripts compiled into `src/scripts.generated.ts`, not the `.lua` files:
 * an edit of a `.lua` file without regenerating would test and ship the old script.
 */

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const generator = join(packageDir, 'scripts/generate-scripts.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'tcc-generated-scripts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function generate(...args: string[]) {
  return spawnSync(process.execPath, [generator, ...args], { encoding: 'utf8' });
}

describe('src/scripts.generated.ts', () => {
  it('matches src/commands/*.lua (else run: npm run build, or node packages/storage-redis/scripts/generate-scripts.mjs)', () => {
    const run = generate('--check');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('is reported stale when a .lua file or an include changes after it was written', () => {
    const commands = join(scratch, 'commands');
    const out = join(scratch, 'scripts.generated.ts');
    cpSync(join(packageDir, 'src/commands'), commands, { recursive: true });
    expect(generate('--commands', commands, '--out', out).status).toBe(0);
    expect(generate('--check', '--commands', commands, '--out', out).status).toBe(0);

    writeFileSync(join(commands, 'includes/serverNow.lua'), '-- changed\n', { flag: 'a' });
    const stale = generate('--check', '--commands', commands, '--out', out);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain(`${out} is stale`);
  });

  it('names the script and the missing file of an unknown include', () => {
    const commands = join(scratch, 'broken');
    cpSync(join(packageDir, 'src/commands'), commands, { recursive: true });
    writeFileSync(join(commands, 'sweep-4.lua'), '--- @include "nowhere"\n', { flag: 'a' });
    const run = generate('--check', '--commands', commands, '--out', join(scratch, 'unused.ts'));
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('sweep-4.lua: --- @include "nowhere" names no file');
  });

  it('holds every script with its includes inlined and its key count from the file name', () => {
    expect([...SCRIPTS.keys()].sort()).toEqual([
      'batch',
      'complete',
      'create',
      'range',
      'remove',
      'sweep',
      'update',
    ]);
    expect(SCRIPTS.get('update')?.numberOfKeys).toBe(2);
    expect(SCRIPTS.get('range')?.numberOfKeys).toBe(1);
    // batch-n.lua: the caller passes the count.
    expect(SCRIPTS.get('batch')?.numberOfKeys).toBeNull();
    for (const script of SCRIPTS.values()) expect(script.lua).not.toMatch(/^--- @include/m);
    expect(SCRIPTS.get('complete')?.lua).toContain('local function casRead(');
  });

  it('inlines an include named by several includes of one script once', () => {
    // batch-n.lua includes the four writes; each of them includes casRead or stuckMark.
    const batch = SCRIPTS.get('batch')!.lua;
    for (const name of ['casRead', 'stuckMark', 'serverNow', 'dropExpired', 'createRecord', 'removeRecord']) {
      expect(batch.split(`local function ${name}(`)).toHaveLength(2);
    }
  });
});
