import { COMMANDS } from './commands/index.js';
import { DEFAULT_CONFIGS } from './config-loader.js';
import type { Command } from './context.js';
import { GLOBAL_OPTIONS, OPTIONS, type OptionName, type OptionSpec, optionText } from './parse.js';

/** `tccctl <name> <xid> [--flag VALUE] ...`, from the command's own table: it cannot drift. */
export function usageOf(name: string, command: Command): string {
  const required = command.required ?? [];
  return [
    `tccctl ${name}`,
    ...command.args.map((a) => `<${a}>`),
    ...command.flags.map((f) => (required.includes(f) ? optionText(f) : `[${optionText(f)}]`)),
  ].join(' ');
}

/** The help text: every command and every option of the parser's table, with who takes it. */
export function help(version: string): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  const options = Object.keys(OPTIONS) as OptionName[];
  const left = (name: OptionName) => {
    const spec: OptionSpec = OPTIONS[name];
    return `${spec.short === undefined ? '    ' : `-${spec.short}, `}${optionText(name)}`;
  };
  const optionWidth = Math.max(...options.map((o) => left(o).length));
  const takenBy = (name: OptionName) =>
    GLOBAL_OPTIONS.includes(name)
      ? 'any command'
      : names.filter((n) => COMMANDS[n]!.flags.includes(name)).join(', ');
  return [
    `tccctl ${version}: recovery worker and operator commands for @tcc/core transactions (@tcc/recovery)`,
    '',
    'usage: tccctl <command> [--config FILE] [options]',
    '',
    'commands:',
    ...names.map(
      (name) =>
        `  ${name.padEnd(width)}  ${COMMANDS[name]!.summary}\n  ${' '.repeat(width)}  ${usageOf(name, COMMANDS[name]!)}`,
    ),
    '',
    'options:',
    ...options.map(
      (name) => `  ${left(name).padEnd(optionWidth)}  ${OPTIONS[name].description} (${takenBy(name)})`,
    ),
    '',
    `The config module (--config, else $TCC_CONFIG, else ./${DEFAULT_CONFIGS.join(', ./')}, the first`,
    'that exists; TypeScript is compiled on the fly) exports the Tcc (default or `tcc`) with its participants',
    'registered, and optionally `recovery` (RecoveryWorker options) and `close()`.',
    '',
    'exit codes: 0 ok, 1 failure, 2 usage, 3 config (or its embedded log in use by another process),',
    '            4 no such record, 5 refused, 6 recovery attempt failed,',
    '            7 changed or driven by another process meanwhile (run again), 8 corrupt records left out',
  ].join('\n');
}
