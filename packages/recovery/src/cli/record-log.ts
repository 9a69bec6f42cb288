import { InvalidOptionError } from '@tcc/core';
import type { RecoveryWorker } from '../worker/recovery-worker.js';

/** How `tccctl worker` prints its per-record lines: `pretty` for people, `json` for log pipelines. */
export type LogFormat = 'pretty' | 'json';

/** One record the worker finished, failed to recover (it retries later) or parked. */
export interface RecordLogLine {
  readonly time: number;
  readonly outcome: string;
  readonly xid: string;
  readonly status?: string | undefined;
  readonly attempt: number;
  readonly error?: string | undefined;
}

export function logFormatOf(flag: string | undefined): LogFormat {
  if (flag === undefined || flag === 'pretty' || flag === 'json') return flag ?? 'pretty';
  throw new InvalidOptionError(`--log must be pretty or json, got ${JSON.stringify(flag)}`);
}

export function formatLine(line: RecordLogLine, format: LogFormat, domain: string): string {
  if (format === 'json') {
    const { time, ...rest } = line;
    return JSON.stringify({ time: new Date(time).toISOString(), domain, ...rest });
  }
  return [
    new Date(line.time).toISOString(),
    line.outcome.padEnd(10),
    line.xid,
    line.status ?? '-',
    `attempt ${line.attempt}`,
    ...(line.error === undefined ? [] : [line.error]),
  ].join('  ');
}

/**
 * Writes one line per record the worker finished (`confirmed`, `cancelled`, `try-failed`),
 * failed on (`failed`: retried after its backoff) or parked (`parked`). Attempts that had nothing
 * to do (`waiting`, `busy`, `finished`, ...) print nothing: the scan finds them again, and a line
 * each would bury the ones that matter. A failed attempt is reported by `failed` or `parked`
 * alone, not also by its `recovered` result.
 */
export function logRecords(
  worker: RecoveryWorker,
  format: LogFormat,
  domain: string,
  write: (line: string) => void,
): void {
  const print = (line: RecordLogLine) => write(formatLine(line, format, domain));
  worker.on('recovered', (result, { attempt }) => {
    if (result.outcome !== 'confirmed' && result.outcome !== 'cancelled' && result.outcome !== 'try-failed')
      return;
    print({ time: Date.now(), outcome: result.outcome, xid: result.xid, status: result.status, attempt });
  });
  worker.on('failed', ({ xid, error, attempt, status }) =>
    print({ time: Date.now(), outcome: 'failed', xid, status, attempt, error: messageOf(error) }),
  );
  worker.on('parked', ({ xid, error, attempt, status }) =>
    print({ time: Date.now(), outcome: 'parked', xid, status, attempt, error: messageOf(error) }),
  );
}

function messageOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return error instanceof Error ? error.message : String(error);
}
