import { decide, type Tcc } from '@tcc/core';
import type { Queue } from 'bullmq';
import { BACKOFF_TYPE } from './backoff.js';
import type { ScanHandover } from './handover.js';
import { JOB, type RecoverJobData } from './job-data.js';
import { recoveryJobId } from './job-id.js';

export interface ScanConfig {
  readonly tcc: Tcc;
  readonly queue: Queue;
  readonly recoverAfterMs: number;
  readonly batchSize: number;
  readonly maxRetries: number;
  readonly onProgress?: (found: number) => void;
  /** Where the records enqueued are kept for this process's jobs (saves each job a read). */
  readonly handover?: ScanHandover;
}

/**
 * One scan: pages through the domain's stuck records (`findStuck`, keyset cursor: its cost follows
 * the stuck records, never the finished ones kept for retention) and enqueues one recovery job per
 * record that has a step to take, under its deterministic id.
 */
export class StuckScanner {
  constructor(private readonly config: ScanConfig) {}

  /**
   * Resolves with the number of stuck records found (the gauge's value). The next page is read
   * while the jobs of this one are added, so Redis and this process work on both at once.
   */
  async scan(): Promise<number> {
    const { tcc, queue, recoverAfterMs, batchSize, maxRetries, onProgress, handover } = this.config;
    const now = Date.now();
    const read = (cursor: string | undefined) => {
      const page = tcc.storage.findStuck({
        domain: tcc.domain,
        dueBefore: now,
        limit: batchSize,
        ...(cursor === undefined ? {} : { cursor }),
      });
      // Awaited below; if adding the previous page's jobs fails first, this one is dropped.
      page.catch(() => {});
      return page;
    };
    let next = read(undefined);
    let cursor: string | undefined;
    let found = 0;
    do {
      const page = await next;
      cursor = page.cursor;
      if (cursor !== undefined) next = read(cursor);
      found += page.records.length;
      // Due records have a step to take; the check keeps a record the store's clock calls due
      // a moment early (a try just short of its deadline) out of the queue until it is.
      const due = page.records.filter((record) => decide(record, now, recoverAfterMs) !== 'wait');
      if (due.length > 0) {
        // Kept before the jobs exist: a job may start as soon as addBulk has added it.
        handover?.keep(due, Date.now());
        await queue.addBulk(
          due.map((record) => {
            const traceparent = record.attachments.traceparent;
            const data: RecoverJobData =
              traceparent === undefined ? { xid: record.xid } : { xid: record.xid, traceparent };
            return {
              name: JOB.recover,
              data,
              opts: {
                jobId: recoveryJobId(record.xid),
                attempts: maxRetries,
                backoff: { type: BACKOFF_TYPE },
                removeOnComplete: true,
                removeOnFail: true,
              },
            };
          }),
        );
      }
      onProgress?.(found);
    } while (cursor !== undefined);
    return found;
  }
}
