#!/usr/bin/env node
import { hasCode, InvalidOptionError } from '@tcc/core';
import { COMMANDS } from './commands/index.js';
import { isStoreLocked, type LoadedConfig, loadConfig } from './config-loader.js';
import type { Flags } from './context.js';
import { EXIT } from './exit-codes.js';
import { consoleOutput } from './output.js';
import { parseLine } from './parse.js';

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'tcc: recovery worker and operator commands for @tcc/core transactions',
    '',
    'usage: tcc <command> [--config tcc.config.js] [options]',
    '',
    ...Object.entries(COMMANDS).map(
      ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}\n  ${' '.repeat(width)}  ${c.usage}`,
    ),
    '',
    'The config module (--config, else $TCC_CONFIG, else ./tcc.config.js) exports the Tcc (default or `tcc`)',
    'with its participants registered, and optionally `recovery` (RecoveryWorker options) and `close()`.',
    '',
    'exit codes: 0 ok, 1 failure, 2 usage, 3 config (or its embedded log in use by another process),',
    '            4 no such record, 5 refused, 6 recovery attempt failed,',
    '            7 changed or driven by another process meanwhile (run again), 8 corrupt records left out',
  ].join('\n');
}

/** Runs one command line; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let json = argv.includes('--json');
  let config: LoadedConfig | undefined;
  let configPath: string | undefined;
  try {
    const { command, args, flags } = parseLine(argv);
    json = flags.json === true;
    if (flags.help || command === undefined || command === 'help') {
      process.stdout.write(`${help()}\n`);
      return command === undefined && !flags.help ? EXIT.usage : EXIT.ok;
    }
    const spec = COMMANDS[command];
    if (spec === undefined)
      throw new InvalidOptionError(`unknown command ${JSON.stringify(command)}; see tcc --help`);
    const extra = (Object.keys(flags) as (keyof Flags)[]).filter(
      (f) => f !== 'config' && !spec.flags.includes(f),
    );
    if (extra.length > 0) {
      throw new InvalidOptionError(`${command} does not take --${extra.join(', --')}; usage: ${spec.usage}`);
    }
    if (args.length !== spec.args) {
      throw new InvalidOptionError(
        spec.args === 1
          ? `${command} needs one xid; usage: ${spec.usage}`
          : `${command} takes no arguments; usage: ${spec.usage}`,
      );
    }
    configPath = flags.config ?? process.env.TCC_CONFIG ?? 'tcc.config.js';
    config = await loadConfig(configPath);
    const output = consoleOutput(json, flags.progress === true);
    return await spec.run({ config, output, flags, args });
  } catch (error) {
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tcc: ${message}\n`);
    if (isStoreLocked(error)) {
      process.stderr.write(`${storeLockedHint(configPath)}\n`);
      // The config's close() might close a database object opened on the holder's directory
      // (a PGlite opened without the lock): that alone can wreck the holder's data. Leave it.
      config = undefined;
    }
    if (code === EXIT.failure && error instanceof Error && error.stack && process.env.TCC_DEBUG) {
      process.stderr.write(`${error.stack}\n`);
    }
    if (json) {
      const errorCode = (error as { code?: unknown }).code;
      process.stdout.write(
        `${JSON.stringify({ error: { code: typeof errorCode === 'string' ? errorCode : 'TCC_FAILURE', message } })}\n`,
      );
    }
    return code;
  } finally {
    await config?.close().catch(() => {});
  }
}

function storeLockedHint(configPath: string | undefined): string {
  return [
    `tcc reads the log through its config (${configPath ?? 'tcc.config.js'}), which opens the same embedded`,
    'directory as the service that holds it. Run tcc while that service is stopped, or keep the log on a',
    'PostgreSQL server (SqlStorage with a pg.Pool) or Redis, which the service and tcc can use at once.',
  ].join('\n');
}

/**
 * By `code`, not class: the config module's Tcc and store may come from another copy of
 * `@tcc/core` than this command line's, whose classes `instanceof` would not recognise.
 */
function exitCodeOf(error: unknown): number {
  if (hasCode(error, 'TCC_INVALID_OPTION')) return EXIT.usage;
  if (hasCode(error, 'TCC_CONFIG') || isStoreLocked(error)) return EXIT.config;
  if (hasCode(error, 'TCC_NOT_FOUND')) return EXIT.notFound;
  if (hasCode(error, 'TCC_OPERATOR_REFUSED')) return EXIT.refused;
  if (hasCode(error, 'TCC_OPERATOR_CONFLICT')) return EXIT.conflict;
  return EXIT.failure;
}

// Explicit exit: the config's clients (and BullMQ's) would otherwise keep the process alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`tcc: ${String(error)}\n`);
    process.exit(EXIT.failure);
  },
);
