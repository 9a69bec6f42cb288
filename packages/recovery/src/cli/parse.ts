import { parseArgs } from 'node:util';
import { InvalidOptionError } from '@tcc/core';

/** One option of the command line: how `parseArgs` reads it and how `--help` describes it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The value's placeholder in help and usage lines (string options). */
  readonly value?: string;
  readonly description: string;
}

/**
 * Every option, the one table both the parser and `--help` read, so the help cannot leave one
 * out. Which command takes which is each command's `flags`.
 */
export const OPTIONS = {
  config: {
    type: 'string',
    short: 'c',
    value: 'FILE',
    description:
      'config module (.js, .mjs, .ts, .mts); default $TCC_CONFIG, else the first of ./tcc.config.js, .mjs, .ts, .mts',
  },
  json: { type: 'boolean', description: 'print JSON for scripts (errors too) instead of tables' },
  status: {
    type: 'string',
    value: 'S',
    description: 'only records of this status (TRYING, CONFIRMING, ...)',
  },
  parked: { type: 'boolean', description: 'only parked records' },
  domain: { type: 'string', value: 'D', description: 'only records of this domain' },
  type: { type: 'string', value: 'ROOT|BRANCH', description: 'only roots or only branches' },
  limit: { type: 'string', value: 'N', description: 'list at most N records (default 100)' },
  all: { type: 'boolean', description: 'list every record, page after page' },
  'older-than': {
    type: 'string',
    value: '7d',
    description: 'age of the tombstones to delete: 30s, 15m, 2h, 7d, or ms',
  },
  'dry-run': { type: 'boolean', description: 'count what would be deleted, delete nothing' },
  progress: {
    type: 'boolean',
    description: 'print the progress of long scans on stderr even when it is not a terminal',
  },
  concurrency: { type: 'string', value: 'N', description: 'recovery jobs run at once (default 32)' },
  'scan-every': {
    type: 'string',
    value: '10s',
    description: 'how often the domain is scanned for stuck records',
  },
  redis: {
    type: 'string',
    value: 'URL',
    description: "Redis of the queue, instead of the config's recovery.connection (or $TCC_REDIS_URL)",
  },
  queue: { type: 'string', value: 'NAME', description: 'BullMQ queue name (default tcc-recovery-<domain>)' },
  prefix: { type: 'string', value: 'P', description: 'BullMQ key prefix (default {tcc})' },
  log: {
    type: 'string',
    value: 'pretty|json',
    description: 'one line per recovered, failed or parked record on stdout: for people, or a JSON object',
  },
  'health-port': {
    type: 'string',
    value: 'PORT',
    description: 'serve GET /healthz on this port: 200 while the Redis connection is ready, else 503',
  },
  'health-host': {
    type: 'string',
    value: 'HOST',
    description: 'address the health endpoint listens on (default 127.0.0.1)',
  },
  help: { type: 'boolean', short: 'h', description: 'print this help' },
  version: { type: 'boolean', description: 'print the version of @tcc/recovery' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** Flags of the command line, parsed: a string option's value, or true for a boolean one. */
export type Flags = {
  readonly [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** Options any command takes: they are about the command line, not about one command. */
export const GLOBAL_OPTIONS: readonly OptionName[] = ['config', 'help', 'version'];

export interface ParsedLine {
  readonly command: string | undefined;
  readonly args: string[];
  readonly flags: Flags;
}

/** Splits the command line; unknown flags and missing values are usage errors. */
export function parseLine(argv: readonly string[]): ParsedLine {
  const options = Object.fromEntries(
    Object.entries(OPTIONS).map(([name, o]) => [
      name,
      'short' in o ? { type: o.type, short: o.short } : { type: o.type },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      allowPositionals: true,
      strict: true,
    });
    const [command, ...args] = positionals;
    return { command, args, flags: values as Flags };
  } catch (error) {
    // parseArgs names the bad option itself ("Unknown option '--colour'"); add where to look.
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidOptionError(
      `${message.replace(/\. To specify a positional.*$/s, '')}; see tccctl --help`,
    );
  }
}

/** `--name VALUE` or `--name`, as usage and help lines show an option. */
export function optionText(name: OptionName): string {
  const option: OptionSpec = OPTIONS[name];
  return option.value === undefined ? `--${name}` : `--${name} ${option.value}`;
}
