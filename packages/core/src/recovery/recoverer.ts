import type { Clock } from '../clock.js';
import { OptimisticLockError } from '../storage/errors.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { TransactionRecord } from '../transaction/record.js';
import type { RecordLog } from '../transaction/record-log.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import { decide } from './decision.js';

/**
 * How one recovery attempt ended:
 * - `confirmed` / `cancelled`: the record is finished;
 * - `try-failed`: a branch past its deadline was marked TRY_FAILED;
 * - `failed`: a participant threw; the record stays for the next attempt (`error`);
 * - `parked`: it failed and reached `maxRetries`, or was parked already; an operator decides;
 * - `waiting`: nothing to do yet (try still within its deadline, branch waiting for its root,
 *   or a confirm or cancel written less than `recoverAfterMs` ago, which its writer may still be
 *   driving);
 * - `finished`: the record is a CONFIRMED or CANCELLED tombstone;
 * - `busy`: another worker changed the record first (lost compare-and-set);
 * - `not-found`: no such record (already finished, or a wrong xid);
 * - `foreign`: the record belongs to another domain, whose process has its participants.
 */
export type RecoveryOutcome =
  | 'confirmed'
  | 'cancelled'
  | 'try-failed'
  | 'failed'
  | 'parked'
  | 'waiting'
  | 'finished'
  | 'busy'
  | 'not-found'
  | 'foreign';

export interface RecoveryResult {
  readonly xid: string;
  readonly outcome: RecoveryOutcome;
  /** Status of the record after the attempt, if it still exists. */
  readonly status?: TransactionRecord['status'];
  readonly error?: unknown;
}

export interface RecoverOptions {
  /**
   * An operator's retry: drive the record now even if it is parked (it is unparked) or was
   * written less than `recoverAfterMs` ago. Only when no other process is driving it.
   */
  force?: boolean;
  /**
   * The record as a scan has just read it (`findStuck`), to save reading it again. A copy is
   * worked on; if it is no longer the stored version, the attempt reads the record afresh.
   */
  record?: TransactionRecord;
}

export interface RecovererLimits {
  readonly maxRetries: number;
  readonly recoverAfterMs: number;
}

/** Runs the next step of one record: the unit of work of every recovery driver. */
export class Recoverer {
  constructor(
    private readonly domain: string,
    private readonly storage: TransactionStorage,
    private readonly log: RecordLog,
    private readonly manager: TransactionManager,
    private readonly clock: Clock,
    private readonly telemetry: Telemetry,
    private readonly limits: RecovererLimits,
  ) {}

  async recover(xid: string, options: RecoverOptions = {}): Promise<RecoveryResult> {
    const given = options.record;
    if (given === undefined) return this.#recover(xid, await this.storage.get(xid), options);
    const result = await this.#recover(xid, copyRecord(given), options);
    // A scan's copy may be stale: the lost compare-and-set says so, and a fresh read decides.
    return result.outcome === 'busy' ? this.#recover(xid, await this.storage.get(xid), options) : result;
  }

  async #recover(
    xid: string,
    record: TransactionRecord | undefined,
    options: RecoverOptions,
  ): Promise<RecoveryResult> {
    if (record === undefined) return { xid, outcome: 'not-found' };
    if (record.domain !== this.domain) return { xid, outcome: 'foreign', status: record.status };
    if (record.parkedAt !== undefined && options.force !== true) {
      return { xid, outcome: 'parked', status: record.status };
    }
    const now = this.clock.now();
    const step = decide(record, now);
    if (step === 'none') return { xid, outcome: 'finished', status: record.status };
    if (step === 'wait') return { xid, outcome: 'waiting', status: record.status };
    // A confirm or cancel written recently may still be running in the process that wrote it.
    const leased =
      step !== 'fail-try' &&
      record.status !== 'TRYING' &&
      now - record.updatedAt < this.limits.recoverAfterMs;
    if (leased && options.force !== true) return { xid, outcome: 'waiting', status: record.status };

    const span = this.telemetry.start('tcc.recover', record);
    const result = await this.telemetry.within(span, () =>
      this.attempt(record, step, options.force === true),
    );
    this.telemetry.end(span, record, result.error);
    this.telemetry.recovered(result.outcome);
    return result;
  }

  private async attempt(
    record: TransactionRecord,
    step: 'confirm' | 'cancel' | 'fail-try',
    force: boolean,
  ): Promise<RecoveryResult> {
    const { xid } = record;
    const { maxRetries } = this.limits;
    if (record.retries >= maxRetries && !force) {
      // Attempts that died without writing their failure (a crashed worker) count too.
      record.parkedAt = this.clock.now();
      record.lastError ??= `gave up after ${record.retries} attempts`;
      return (await this.claim(record))
        ? { xid, outcome: 'parked', status: record.status }
        : { xid, outcome: 'busy' };
    }
    // Counting the attempt is also the compare-and-set that keeps two workers from driving
    // the record at once.
    record.retries += 1;
    if (step === 'fail-try') record.status = 'TRY_FAILED';
    if (step === 'cancel') record.status = 'CANCELLING';
    delete record.parkedAt;
    if (!(await this.claim(record))) return { xid, outcome: 'busy' };
    if (step === 'fail-try') return { xid, outcome: 'try-failed', status: record.status };

    const failure = await this.manager.settle(record, step, undefined, (failed) => {
      if (failed.retries >= maxRetries) failed.parkedAt = this.clock.now();
    });
    if (failure === undefined) {
      return { xid, outcome: step === 'confirm' ? 'confirmed' : 'cancelled', status: record.status };
    }
    // Parked only if the write that says so landed.
    const parked = failure.recorded && record.parkedAt !== undefined;
    return { xid, outcome: parked ? 'parked' : 'failed', status: record.status, error: failure.error };
  }

  /** Writes the record; `false` if another worker changed it first. */
  private async claim(record: TransactionRecord): Promise<boolean> {
    try {
      await this.log.save(record);
      return true;
    } catch (error) {
      if (error instanceof OptimisticLockError) return false;
      throw error;
    }
  }
}

function copyRecord(record: TransactionRecord): TransactionRecord {
  return {
    ...record,
    participants: record.participants.map((p) => ({ ...p })),
    attachments: { ...record.attachments },
  };
}
