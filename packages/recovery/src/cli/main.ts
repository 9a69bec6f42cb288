import { createRequire } from 'node:module';
import { hasCode, InvalidOptionError } from '@tcc/core';
import { COMMANDS } from './commands/index.js';
import { configPathOf, isStoreLocked, type LoadedConfig, loadConfig } from './config-loader.js';
import { EXIT } from './exit-codes.js';
import { help, usageOf } from './help.js';
import { consoleOutput } from './output.js';
import { GLOBAL_OPTIONS, type OptionName, parseLine } from './parse.js';

/** This package's version, from its `package.json` (two folders up in `src/cli/` and in `dist/cli/`). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/** Runs one command line; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let json = argv.includes('--json');
  let config: LoadedConfig | undefined;
  let configPath: string | undefined;
  try {
    const { command, args, flags } = parseLine(argv);
    json = flags.json === true;
    if (flags.version) {
      process.stdout.write(`${json ? JSON.stringify({ version: VERSION }) : VERSION}\n`);
      return EXIT.ok;
    }
    if (flags.help || command === undefined || command === 'help') {
      process.stdout.write(`${help(VERSION)}\n`);
      return command === undefined && !flags.help ? EXIT.usage : EXIT.ok;
    }
    const spec = COMMANDS[command];
    if (spec === undefined)
      throw new InvalidOptionError(`unknown command ${JSON.stringify(command)}; see tccctl --help`);
    const usage = usageOf(command, spec);
    const extra = (Object.keys(flags) as OptionName[]).filter(
      (f) => !GLOBAL_OPTIONS.includes(f) && !spec.flags.includes(f),
    );
    if (extra.length > 0) {
      throw new InvalidOptionError(`${command} does not take --${extra.join(', --')}; usage: ${usage}`);
    }
    if (args.length !== spec.args.length) {
      throw new InvalidOptionError(
        spec.args.length === 1
          ? `${command} needs one ${spec.args[0]}, got ${args.length}; usage: ${usage}`
          : `${command} takes no arguments, got ${JSON.stringify(args.join(' '))}; usage: ${usage}`,
      );
    }
    const missing = (spec.required ?? []).find((f) => flags[f] === undefined);
    if (missing !== undefined) {
      throw new InvalidOptionError(`${command} needs --${missing}; usage: ${usage}`);
    }
    configPath = await configPathOf(flags.config);
    config = await loadConfig(configPath);
    const output = consoleOutput(json, flags.progress === true);
    return await spec.run({ config, output, flags, args });
  } catch (error) {
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tccctl: ${message}\n`);
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
    `tccctl reads the log through its config (${configPath ?? 'tcc.config.js'}), which opens the same embedded`,
    'directory as the service that holds it. Run tccctl while that service is stopped, or keep the log on a',
    'PostgreSQL server (SqlStorage with a pg.Pool) or Redis, which the service and tccctl can use at once.',
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

/** ioredis's fixed prefix for an `error` event nobody listens to, which it prints itself. */
const IOREDIS_UNHANDLED = '[ioredis] Unhandled error event:';

/**
 * Keeps ioredis's `[ioredis] Unhandled error event` lines off stderr. The config's own clients
 * (its store's, usually) have no `error` listener and this command line cannot reach them to
 * add one; while Redis is down each reconnect attempt would print a stack. Nothing is lost: the
 * command whose Redis call fails reports that failure itself, in one line. `TCC_DEBUG` keeps them.
 */
function quietIoredis(): void {
  if (process.env.TCC_DEBUG) return;
  const original = console.error;
  console.error = (...args: unknown[]) => {
    if (args[0] === IOREDIS_UNHANDLED) return;
    original.apply(console, args);
  };
}

/**
 * Runs the command line of this process and exits with its code: the bin's entry. Explicit
 * exit: the config's clients (and BullMQ's) would otherwise keep the process alive.
 */
export function run(): void {
  quietIoredis();
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`tccctl: ${String(error)}\n`);
      process.exit(EXIT.failure);
    },
  );
}
