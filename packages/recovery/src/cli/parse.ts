import { parseArgs } from 'node:util';
import { InvalidOptionError } from '@tcc/core';
import type { Flags } from './context.js';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  status: { type: 'string' },
  parked: { type: 'boolean' },
  domain: { type: 'string' },
  type: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  'older-than': { type: 'string' },
  'dry-run': { type: 'boolean' },
  progress: { type: 'boolean' },
  concurrency: { type: 'string' },
  redis: { type: 'string' },
  queue: { type: 'string' },
  prefix: { type: 'string' },
  'scan-every': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ParsedLine {
  readonly command: string | undefined;
  readonly args: string[];
  readonly flags: Flags & { help?: boolean };
}

/** Splits the command line; unknown flags and missing values are usage errors. */
export function parseLine(argv: readonly string[]): ParsedLine {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const [command, ...args] = positionals;
    return { command, args, flags: values as ParsedLine['flags'] };
  } catch (error) {
    throw new InvalidOptionError(error instanceof Error ? error.message : String(error));
  }
}
