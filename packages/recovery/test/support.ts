import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../bin/tccctl.js', import.meta.url));
export const SHOP_CONFIG = fileURLToPath(new URL('./fixtures/shop.config.mjs', import.meta.url));
export const CRASH_APP = fileURLToPath(new URL('./fixtures/crash-app.mjs', import.meta.url));

/**
 * Compiles this package to `dist/` for the processes the tests spawn (incremental: quick when
 * nothing changed). `-p`, not `-b`: the other packages' `dist/` is the build's concern.
 */
export async function buildRecovery(): Promise<void> {
  await run(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'packages/recovery'], {
    cwd: ROOT,
  });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tccctl <args>` (through the bin, as npm links it) to its end. */
export async function tccCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A long-running child (a worker or the crashing app); its output is kept for failure messages. */
export interface Child {
  readonly process: ChildProcess;
  output(): string;
  /** Resolves when a line containing `text` appears on stdout or stderr. */
  waitFor(text: string): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startChild(script: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let output = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of [...waiters]) {
      if (output.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return {
    process: child,
    output: () => output,
    waitFor(text) {
      if (output.includes(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push({ text, resolve });
        child.once('exit', (code, signal) =>
          reject(new Error(`process exited (${code ?? signal}) before "${text}": ${output}`)),
        );
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Starts `tccctl worker` with the shop config. */
export function startWorker(env: NodeJS.ProcessEnv): Child {
  return startChild(CLI, ['worker', '--config', SHOP_CONFIG], env);
}

/** Polls `check` until it returns true; `timeoutMs` only bounds a hang, it asserts nothing about speed. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
