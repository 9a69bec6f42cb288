import type { LoadedConfig } from './config-loader.js';
import type { Output } from './output.js';

/** Flags of the command line, parsed; each command reads the ones it accepts. */
export interface Flags {
  readonly config?: string;
  readonly json?: boolean;
  readonly status?: string;
  readonly parked?: boolean;
  readonly domain?: string;
  readonly type?: string;
  readonly limit?: string;
  readonly all?: boolean;
  readonly 'older-than'?: string;
  readonly 'dry-run'?: boolean;
  readonly progress?: boolean;
  readonly concurrency?: string;
  readonly redis?: string;
  readonly queue?: string;
  readonly prefix?: string;
  readonly 'scan-every'?: string;
}

export interface CommandContext {
  readonly config: LoadedConfig;
  readonly output: Output;
  readonly flags: Flags;
  /** Positional arguments after the command name. */
  readonly args: readonly string[];
}

/** One subcommand: its flags, its arguments, and what it does; resolves with the exit code. */
export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly flags: readonly (keyof Flags)[];
  /** Number of positional arguments it takes (an xid: 1). */
  readonly args: number;
  run(context: CommandContext): Promise<number>;
}
