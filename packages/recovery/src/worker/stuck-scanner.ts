import { decide, type Tcc } from '@tcc/core';
import type { Queue } from 'bullmq';
import { BACKOFF_TYPE } from './backoff.js';
import { JOB, type RecoverJobData } from './job-data.js';
import { recoveryJobId } from './job-id.js';

export interface ScanConfig {
  readonly tcc: Tcc;
  readonly queue: Queue;
  readonly recoverAfterMs: number;
  readonly batchSize: number;
  readonly maxRetries: number;
  readonly onProgress?: (found: number) => void;
}

/**
 * One scan: pages through the domain's stuck records (`findStuck`, keyset cursor: its cost follows
 * the stuck records, never the finished ones kept for retention) and enqueues one recovery job per
 * record that has a step to take, under its deterministic id.
 */
export class StuckScanner {
  constructor(private readonly config: ScanConfig) {}

  /** Resolves with the number of stuck records found (the gauge's value). */
  async scan(): Promise<number> {
    const { tcc, queue, recoverAfterMs, batchSize, maxRetries, onProgress } = this.config;
    const now = Date.now();
    let cursor: string | undefined;
    let found = 0;
    do {
      const page = await tcc.storage.findStuck({
        domain: tcc.domain,
        updatedBefore: now - recoverAfterMs,
        limit: batchSize,
        ...(cursor === undefined ? {} : { cursor }),
      });
      found += page.records.length;
      // A try still inside its deadline has nothing to do yet: no job until it passes.
      const due = page.records.filter((record) => decide(record, now) !== 'wait');
      if (due.length > 0) {
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
      cursor = page.cursor;
    } while (cursor !== undefined);
    return found;
  }
}
