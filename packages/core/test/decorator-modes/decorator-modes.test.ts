import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Compiles fixture/program.ts with the real TypeScript compiler in each decorator mode and runs
// the output with plain node against the built @tcc/core, as an application would.
const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const tsc = path.join(repo, 'node_modules', '.bin', 'tsc');
const temps: string[] = [];

function run(command: string, args: string[], cwd = repo): SpawnSyncReturns<string> {
  // A compile on a loaded machine can take a minute; the bound only stops a hang.
  return spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 170_000 });
}

function output(result: SpawnSyncReturns<string>): string {
  return [result.error?.message, result.stdout, result.stderr].filter(Boolean).join('\n');
}

function compile(mode: 'legacy' | 'standard'): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `tcc-decorators-${mode}-`));
  temps.push(out);
  const result = run(tsc, ['-p', path.join(here, mode, 'fixture'), '--outDir', out]);
  if (result.status !== 0) {
    throw new Error(`the ${mode} fixture does not compile (tsc exit ${result.status}):\n${output(result)}`);
  }
  // The emitted ESM imports '@tcc/core' by name: give it the workspace package (its dist).
  fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "module" }\n');
  fs.mkdirSync(path.join(out, 'node_modules', '@tcc'), { recursive: true });
  fs.symlinkSync(path.join(repo, 'packages', 'core'), path.join(out, 'node_modules', '@tcc', 'core'), 'dir');
  return out;
}

function execute(out: string): unknown {
  const result = run(process.execPath, [path.join(out, 'program.js')], out);
  if (result.status !== 0)
    throw new Error(`the compiled fixture failed (exit ${result.status}):\n${output(result)}`);
  const lines = result.stdout.trim().split('\n');
  expect(lines, output(result)).toHaveLength(1);
  return JSON.parse(lines[0]!);
}

function tsconfig(mode: 'legacy' | 'standard'): { compilerOptions: Record<string, unknown> } {
  return JSON.parse(fs.readFileSync(path.join(here, mode, 'fixture', 'tsconfig.json'), 'utf8'));
}

beforeAll(() => {
  const result = run(tsc, ['-b', 'packages/core']);
  if (result.status !== 0) throw new Error(`tsc -b packages/core failed:\n${output(result)}`);
});

afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

describe.each([
  { mode: 'legacy' as const, probed: 'legacy:3:string' },
  { mode: 'standard' as const, probed: 'standard:2:method' },
])('a program compiled by tsc with $mode decorators', ({ mode, probed }) => {
  it('is configured for that mode, without emitDecoratorMetadata', () => {
    const options = tsconfig(mode).compilerOptions;
    expect(options.experimentalDecorators).toBe(mode === 'legacy' ? true : undefined);
    expect(options.emitDecoratorMetadata).toBeUndefined();
    expect(options.noEmit).toBe(false);
  });

  it('compiles (including the @ts-expect-error on a synchronous try), runs, confirms and cancels', () => {
    const result = execute(compile(mode));
    expect(result).toEqual({
      // The decorators really were called the way this mode calls them.
      probed: [probed],
      confirmed: {
        calls: ['try:debit:t1', 'try:credit:t1', 'confirm:debit:t1', 'confirm:credit:t1'],
        balances: { alice: 70, bob: 30 },
        returned: 30,
      },
      cancelled: {
        calls: ['try:debit:t2', 'try:credit:t2', 'cancel:credit:t2', 'cancel:debit:t2'],
        balances: { alice: 70, bob: 30 },
        error: 'order rejected',
        // @Participant('capital') named the participant.
        targets: ['capital.debit', 'capital.credit'],
      },
      unregistered: 'TCC_NOT_REGISTERED',
      left: 0,
    });
  }, 180_000);
});

describe('the in-vitest decorator suites', () => {
  it('define the same decorated classes in both modes', () => {
    // legacy/classes.ts and standard/classes.ts are one source compiled two ways by esbuild
    // (each directory's tsconfig.json decides the mode); keep them identical.
    const legacy = fs.readFileSync(path.join(here, 'legacy', 'classes.ts'), 'utf8');
    const standard = fs.readFileSync(path.join(here, 'standard', 'classes.ts'), 'utf8');
    expect(standard).toBe(legacy);
  });

  it('run standard/ without experimentalDecorators and legacy/ with it', () => {
    const standard = JSON.parse(fs.readFileSync(path.join(here, 'standard', 'tsconfig.json'), 'utf8'));
    expect(standard.compilerOptions.experimentalDecorators).toBeUndefined();
    const base = JSON.parse(fs.readFileSync(path.join(repo, 'tsconfig.base.json'), 'utf8'));
    expect(base.compilerOptions.experimentalDecorators).toBeUndefined();
    const test = JSON.parse(fs.readFileSync(path.join(here, '..', 'tsconfig.json'), 'utf8'));
    expect(test.compilerOptions.experimentalDecorators).toBe(true);
  });
});
