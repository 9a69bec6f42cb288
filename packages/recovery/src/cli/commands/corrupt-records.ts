import { hasCode } from '@tcc/core';
import type { CorruptRecordReport } from '../../errors/corrupt-records-error.js';
import { EXIT } from '../exit-codes.js';

/** Exit code of a listing that left out records it could not read (it lists the rest and names them). */
export const EXIT_CORRUPT_RECORDS = EXIT.corrupt;

/** Core's message for one, `stored transaction record <key> is corrupt: <reason>`. */
const MESSAGE = /^stored transaction record (.+?) is corrupt: ([\s\S]*)$/;

/**
 * Runs `work` and collects the stored records the store reported it could not read while it
 * ran. `list` and `findStuck` skip such a record and tell the store's `onCorrupt`, which by
 * default (Redis and SQL stores) is a process warning of code `TCC_CORRUPT_RECORD`: those
 * warnings are what this counts. A store given another `onCorrupt` is not heard from, unless
 * that reporter also calls `process.emitWarning(error)`.
 */
export async function collectCorruptRecords<T>(
  work: () => Promise<T>,
): Promise<{ result: T; corrupt: CorruptRecordReport[] }> {
  const byKey = new Map<string, CorruptRecordReport>();
  const listener = (warning: Error) => {
    const report = reportOf(warning);
    if (report !== undefined && !byKey.has(report.key)) byKey.set(report.key, report);
  };
  process.on('warning', listener);
  try {
    const result = await work();
    // Warnings are emitted on a later tick than the one that raised them.
    await new Promise((resolve) => setImmediate(resolve));
    return { result, corrupt: [...byKey.values()] };
  } finally {
    process.off('warning', listener);
  }
}

function reportOf(warning: Error): CorruptRecordReport | undefined {
  // By code: the store reporting it may be built on another copy of `@tcc/core`.
  if (!hasCode(warning, 'TCC_CORRUPT_RECORD')) return undefined;
  // The SQL store warns with the error itself, which has `key`; the Redis store with its message.
  const key = (warning as { key?: unknown }).key;
  const parsed = MESSAGE.exec(warning.message);
  return {
    key: typeof key === 'string' ? key : (parsed?.[1] ?? warning.message),
    reason: parsed?.[2] ?? warning.message,
  };
}
