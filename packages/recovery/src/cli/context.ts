import type { LoadedConfig } from './config-loader.js';
import type { Output } from './output.js';
import type { Flags, OptionName } from './parse.js';

export type { Flags } from './parse.js';

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
  /** The options it takes besides the global ones (`--config`, `--help`, `--version`). */
  readonly flags: readonly OptionName[];
  /** Options it cannot run without (shown without brackets in its usage). */
  readonly required?: readonly OptionName[];
  /** Names of its positional arguments, e.g. `['xid']`. */
  readonly args: readonly string[];
  run(context: CommandContext): Promise<number>;
}
