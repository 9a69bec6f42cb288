import type { TransactionRecord } from '@tcc/core';

/** Where a command writes: results to `out` (stdout), messages and progress to `err` (stderr). */
export interface Output {
  readonly json: boolean;
  out(line: string): void;
  err(line: string): void;
  /** A progress line for long scans, on stderr when it is a terminal (or `--progress`). */
  progress(line: string): void;
  /** Ends the progress line, if one was written. */
  done(): void;
}

export function consoleOutput(json: boolean, forceProgress: boolean): Output {
  const showProgress = forceProgress || process.stderr.isTTY === true;
  let open = false;
  return {
    json,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    progress(line) {
      if (!showProgress) return;
      // On a terminal one line is rewritten; elsewhere each update is its own line.
      process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
      open = process.stderr.isTTY === true;
    },
    done() {
      if (open) process.stderr.write('\n');
      open = false;
    },
  };
}

/** A plain text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function isoTime(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}

export function shorten(text: string | undefined, max = 60): string {
  if (text === undefined) return '';
  const one = text.replace(/\s+/g, ' ');
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** The record as scripts get it: times both as numbers and ISO strings. */
export function recordJson(record: TransactionRecord): Record<string, unknown> {
  return {
    ...record,
    createdAtIso: isoTime(record.createdAt),
    updatedAtIso: isoTime(record.updatedAt),
    ...(record.parkedAt === undefined ? {} : { parkedAtIso: isoTime(record.parkedAt) }),
  };
}

/** `1 record`, `2 records`: a count with its noun in the right number (`plural` for irregular ones). */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
