import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hasCode, type Tcc } from '@tcc/core';
import { describeValue } from '@tcc/core/storage';
import { ConfigError } from '../errors/config-error.js';
import { isTcc, type RecoveryWorkerOptions } from '../worker/options.js';

/** What a `tcc.config.js` module gives the command line. */
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
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    if (isStoreLocked(error)) throw error;
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
 * `StoreLockedError` of `@tcc/storage-sql` (matched by its code: any store may refuse this way):
 * an embedded log whose directory another process, usually the running service, holds.
 */
export function isStoreLocked(error: unknown): boolean {
  return hasCode(error, 'TCC_STORE_LOCKED');
}
