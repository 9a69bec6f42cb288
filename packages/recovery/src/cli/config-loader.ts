import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hasCode, type Tcc } from '@tcc/core';
import { describeValue } from '@tcc/core/storage';
import { ConfigError } from '../errors/config-error.js';
import { isTcc, type RecoveryWorkerOptions } from '../worker/options.js';

/** Looked for in the working directory, in this order, when neither --config nor $TCC_CONFIG is given. */
export const DEFAULT_CONFIGS = [
  'tcc.config.js',
  'tcc.config.mjs',
  'tcc.config.ts',
  'tcc.config.mts',
] as const;

/** Extensions Node cannot import by itself, loaded through jiti (which compiles them on the fly). */
const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

/** What a `tcc.config.js` (or `.ts`) module gives the command line. */
export interface LoadedConfig {
  readonly path: string;
  readonly tcc: Tcc;
  /** The module's `recovery` export: RecoveryWorker options other than `tcc`. */
  readonly recovery: Partial<Omit<RecoveryWorkerOptions, 'tcc'>>;
  /** The module's `close` export (quits its clients), or nothing. */
  readonly close: () => Promise<void>;
}

/**
 * Imports the config module: it exports the `Tcc` (as `default` or `tcc`, or a function, maybe
 * async, returning it) with its participants registered, optionally `recovery` (worker options:
 * `connection`, `prefix`, ...) and `close()`. A store that refuses to open because another
 * process holds it (`TCC_STORE_LOCKED`) is thrown as it is: the config is fine, the log is busy.
 */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  const file = resolve(path);
  try {
    await access(file);
  } catch {
    throw new ConfigError(`config file not found: ${file} (pass --config <file> or set TCC_CONFIG)`);
  }
  let module: Record<string, unknown>;
  try {
    module = await importModule(file);
  } catch (error) {
    if (isStoreLocked(error)) throw error;
    const where = await syntaxErrorLocation(file, error);
    if (where !== undefined) {
      throw new ConfigError(`cannot load config ${file}: ${where}`, { cause: error });
    }
    throw new ConfigError(
      `cannot load config ${file}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  let exported = module.tcc ?? module.default;
  if (typeof exported === 'function' && !isTcc(exported)) {
    try {
      exported = await (exported as () => unknown)();
    } catch (error) {
      if (isStoreLocked(error)) throw error;
      throw new ConfigError(
        `config ${file}: its exported function threw: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }
  if (!isTcc(exported)) {
    throw new ConfigError(
      `config ${file} must export a Tcc instance (export default tcc, or export const tcc), got ${describeValue(exported)}`,
    );
  }
  const recovery = module.recovery ?? {};
  if (recovery === null || typeof recovery !== 'object') {
    throw new ConfigError(
      `config ${file}: export recovery must be an object of worker options, got ${describeValue(recovery)}`,
    );
  }
  const close = module.close;
  if (close !== undefined && typeof close !== 'function') {
    throw new ConfigError(`config ${file}: export close must be a function, got ${describeValue(close)}`);
  }
  return {
    path: file,
    tcc: exported,
    recovery: recovery as LoadedConfig['recovery'],
    close: async () => {
      await (close as (() => unknown) | undefined)?.();
    },
  };
}

/**
 * The config to load: `--config`, else `$TCC_CONFIG`, else the first of {@link DEFAULT_CONFIGS}
 * in the working directory that exists (the first name, to say it is missing, when none does).
 */
export async function configPathOf(flag: string | undefined): Promise<string> {
  const given = flag ?? process.env.TCC_CONFIG;
  if (given !== undefined && given !== '') return given;
  for (const name of DEFAULT_CONFIGS) {
    try {
      await access(name);
      return name;
    } catch {
      // the next name
    }
  }
  throw new ConfigError(
    `no config: none of ${DEFAULT_CONFIGS.map((n) => `./${n}`).join(', ')} exists; pass --config <file> or set TCC_CONFIG`,
  );
}

async function importModule(file: string): Promise<Record<string, unknown>> {
  if (!TYPESCRIPT.has(extname(file))) {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  }
  // Loaded only for a TypeScript config: a JavaScript one costs nothing more than an import.
  const { createJiti } = await import('jiti');
  // tryNative: the config's own imports (`@tcc/core`, ioredis, built JavaScript) are imported
  // by Node itself, so the config shares this process's copies of them; jiti compiles only
  // what Node cannot import (the TypeScript files).
  const jiti = createJiti(import.meta.url, { tryNative: true, moduleCache: true, fsCache: false });
  return (await jiti.import(file)) as Record<string, unknown>;
}

/**
 * `file:line:column: message` (and the line and a caret where known) of a config that does not
 * compile, or undefined for any other error. jiti puts the place in its message
 * (`ParseError: Unexpected token \n /path/tcc.config.ts:3:7`). Node does not: the SyntaxError a
 * failed `import()` rejects with has neither file nor line (Node adds them only when it prints an
 * uncaught one), and the culprit may be any module the config imports. So the config is imported
 * once more in a child process that lets the error go uncaught and prints it; no module runs
 * there, as a module graph that does not compile is not evaluated.
 */
async function syntaxErrorLocation(file: string, error: unknown): Promise<string | undefined> {
  if (!(error instanceof Error)) return undefined;
  const parse = /^(?:\w*Error: )?(?:ParseError: )?([\s\S]*?)\s*\n\s*(\S+:\d+:\d+)\s*$/.exec(error.message);
  if (parse !== null && TYPESCRIPT.has(extname(file))) return `${parse[2]}: SyntaxError: ${parse[1]}`;
  if (error.name !== 'SyntaxError' || !compiledByNode(error)) return undefined;
  const printed = await new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      [
        ...process.execArgv,
        '--input-type=module',
        '-e',
        'await import(process.argv[1])',
        pathToFileURL(file).href,
      ],
      { timeout: 15_000, env: process.env },
      (_, __, stderr) => resolve(stderr),
    );
  });
  // `file:///path/x.mjs:3` (or a path, for CommonJS), the source line, the carets, a blank line.
  const lines = printed.split('\n');
  const at = lines.findIndex((l) => /^(file:\/\/\S+|\/\S*|[A-Za-z]:\\\S*):\d+$/.test(l));
  if (at === -1) return undefined;
  const [, where, line] = /^(.*):(\d+)$/.exec(lines[at]!)!;
  const path = where!.startsWith('file://') ? fileURLToPath(where!) : where!;
  const source = lines[at + 1] ?? '';
  const caret = lines[at + 2] ?? '';
  const column = caret.indexOf('^') + 1;
  const frame = column > 0 ? `\n  ${source}\n  ${caret}` : '';
  return `${path}:${line}${column > 0 ? `:${column}` : ''}: ${error.name}: ${error.message}${frame}`;
}

/** A SyntaxError of the compiler (its first frame is Node's loader), not one thrown by running code (`JSON.parse`). */
function compiledByNode(error: Error): boolean {
  const frame = error.stack?.split('\n').find((l) => l.trimStart().startsWith('at '));
  return frame === undefined || frame.includes('(node:internal/');
}

/**
 * `StoreLockedError` of `@tcc/storage-sql` (matched by its code: any store may refuse this way):
 * an embedded log whose directory another process, usually the running service, holds.
 */
export function isStoreLocked(error: unknown): boolean {
  return hasCode(error, 'TCC_STORE_LOCKED');
}
