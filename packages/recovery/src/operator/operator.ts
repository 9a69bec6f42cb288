import {
  hasCode,
  InvalidOptionError,
  type RecoveryResult,
  type Tcc,
  TERMINAL_STATUSES,
  type TransactionRecord,
  type TransactionStatus,
} from '@tcc/core';
import { writeNextVersion } from '@tcc/core/storage';
import { OperatorConflictError } from '../errors/operator-conflict-error.js';
import { OperatorRefusedError } from '../errors/operator-refused-error.js';
import { RecordNotFoundError } from '../errors/record-not-found-error.js';
import { type OperatorDecision, planDecision } from './decision-rules.js';

/** What `confirm`/`cancel` did: whether it wrote the commit point, and the recovery that followed. */
export interface DecisionResult {
  readonly xid: string;
  readonly decision: OperatorDecision;
  /** True if this call wrote CONFIRMING/CANCELLING; false if the record already said so. */
  readonly wrote: boolean;
  /** The attempt that followed, absent if the record had already ended that way. */
  readonly recovery?: RecoveryResult;
}

export interface PurgeResult {
  readonly scanned: number;
  readonly purged: number;
  /** Tombstones changed by another process meanwhile, left alone. */
  readonly skipped: number;
}

/**
 * The operator's actions on one domain's log, built on `tcc.storage` (compare-and-set writes)
 * and `tcc.recover(xid, { force: true })`. Every action reads the record, checks what it may
 * do, and writes with the version it read, so a concurrent worker makes it fail cleanly
 * ({@link OperatorConflictError}) rather than overwrite.
 */
export class Operator {
  constructor(private readonly tcc: Tcc) {}

  /** The record, or {@link RecordNotFoundError}. */
  async show(xid: string): Promise<TransactionRecord> {
    const record = await this.tcc.storage.get(checkXid(xid));
    if (record === undefined) throw new RecordNotFoundError(xid);
    return record;
  }

  /** Drives the record now, parked or not (an operator's retry); `busy` while another driver holds its claim. */
  async retry(xid: string): Promise<RecoveryResult> {
    await this.show(xid);
    return this.tcc.recover(xid, { force: true });
  }

  /**
   * An operator's decision: writes CONFIRMING or CANCELLING (the commit point) where the log
   * allows it, then drives the record.
   *
   * @throws {OperatorRefusedError} where it would contradict the log (see `RefusalRule`).
   */
  async decide(xid: string, decision: OperatorDecision): Promise<DecisionResult> {
    const record = await this.show(xid);
    const plan = planDecision(record, decision, this.tcc.domain);
    if (plan === 'done') return { xid, decision, wrote: false };
    if (plan === 'decide') {
      // A driver at work on it (its claim is live) decides nothing here either: wait for it.
      const claim = record.claim;
      if (claim !== undefined && claim.until > Date.now()) {
        throw new OperatorConflictError(
          xid,
          decision,
          `${claim.owner} is driving it until ${new Date(claim.until).toISOString()}`,
        );
      }
      await this.#write(record, decision, (next) => {
        next.status = (decision === 'confirm' ? 'CONFIRMING' : 'CANCELLING') satisfies TransactionStatus;
        next.updatedAt = Date.now();
        // Due now: the recovery below drives it, or a worker soon after if that one fails.
        next.dueAt = next.updatedAt;
        delete next.parkedAt;
        delete next.lastError;
      });
    }
    return {
      xid,
      decision,
      wrote: plan === 'decide',
      recovery: await this.tcc.recover(xid, { force: true }),
    };
  }

  /**
   * Puts a parked record back in the automatic loop: clears `parkedAt` and `lastError`, resets
   * `retries` and makes it due now, keeping its status, so the next scan finds it at once.
   */
  async unpark(xid: string): Promise<TransactionRecord> {
    const record = await this.show(xid);
    if (record.parkedAt === undefined) {
      throw new OperatorRefusedError(
        xid,
        'not-parked',
        `unpark: ${xid} is not parked (status ${record.status}, ${record.retries} ${record.retries === 1 ? 'retry' : 'retries'})`,
      );
    }
    return this.#write(record, 'unpark', (next) => {
      next.retries = 0;
      // Due at once: the next scan or poller pass takes it up. Not a step: updatedAt stays.
      next.dueAt = Date.now();
      delete next.parkedAt;
      delete next.lastError;
    });
  }

  /**
   * Deletes CONFIRMED and CANCELLED tombstones last written before `olderThan` (ms since the
   * epoch), through `list` by status; live records are never touched.
   */
  async purge(
    olderThan: number,
    onProgress?: (scanned: number) => void,
    dryRun = false,
  ): Promise<PurgeResult> {
    let scanned = 0;
    let purged = 0;
    let skipped = 0;
    for (const status of TERMINAL_STATUSES) {
      let cursor: string | undefined;
      do {
        const page = await this.tcc.storage.list({
          domain: this.tcc.domain,
          status,
          limit: 500,
          ...(cursor === undefined ? {} : { cursor }),
        });
        for (const record of page.records) {
          scanned++;
          if (record.updatedAt >= olderThan) continue;
          if (dryRun) {
            purged++;
            continue;
          }
          try {
            await this.tcc.storage.remove(record.xid, record.version);
            purged++;
          } catch (error) {
            if (!hasCode(error, 'TCC_OPTIMISTIC_LOCK')) throw error;
            skipped++;
          }
        }
        onProgress?.(scanned);
        cursor = page.cursor;
      } while (cursor !== undefined);
    }
    return { scanned, purged, skipped };
  }

  /** Writes `edit` of the record as read; {@link OperatorConflictError} if it changed meanwhile. */
  async #write(
    record: TransactionRecord,
    action: string,
    edit: (next: TransactionRecord) => void,
  ): Promise<TransactionRecord> {
    const written = await writeNextVersion(this.tcc.storage, record, edit);
    if (written === undefined) throw new OperatorConflictError(record.xid, action);
    return written;
  }
}

function checkXid(xid: unknown): string {
  if (typeof xid !== 'string' || xid === '') {
    throw new InvalidOptionError(`xid must be a non-empty string, got ${String(xid)}`);
  }
  return xid;
}
