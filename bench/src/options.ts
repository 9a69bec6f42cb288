import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
/** The values of a benchmark's own options (none has a default or `multiple`). */
type OwnValues<T extends Options> = {
  readonly [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : string;
};

/** What every benchmark takes besides its own options. */
const COMMON = {
  quick: { type: 'boolean', default: false },
  save: { type: 'boolean' },
  'no-save': { type: 'boolean' },
  check: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const satisfies Options;

/**
 * A benchmark's command line: `--quick`, `--save`/`--no-save`, `--check`, `--help` and the
 * benchmark's `own` options. `--help` prints `usage` and exits 0; an unknown or malformed
 * option prints what is wrong, then `usage`, and exits 2 (as does `fail`).
 */
export function parseBenchArgs<const T extends Options>(
  usage: string,
  own: T,
  argv: readonly string[] = process.argv.slice(2),
) {
  const fail = (message: string): never => {
    console.error(`${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args: [...argv], strict: true, options: { ...COMMON, ...own } }).values;
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  const text = (name: string): unknown => values[name];
  return {
    values: values as OwnValues<T>,
    quick: values.quick === true,
    check: values.check === true,
    fail,
    /** `--<name>` as a positive integer; `fallback` when it is not given. */
    positive(name: keyof T & string, fallback: number): number {
      const given = text(name);
      if (given === undefined) return fallback;
      const n = Number(given);
      if (!Number.isInteger(n) || n < 1)
        fail(`--${name} must be a positive integer, got ${JSON.stringify(given)}`);
      return n;
    },
    /** Whether to save the results: `--save` or `--no-save` if given, else `byDefault`. */
    save(byDefault: boolean): boolean {
      if (values['no-save'] === true) return false;
      return values.save === undefined ? byDefault : values.save === true;
    },
  };
}
