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
 * - `waiting`: nothing to do yet (try still within its deadline, branch waiting for its root);
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
  /** Also drive a parked record (an operator's retry); it is unparked if it succeeds. */
  force?: boolean;
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
    private readonly maxRetries: number,
  ) {}

  async recover(xid: string, options: RecoverOptions = {}): Promise<RecoveryResult> {
    const record = await this.storage.get(xid);
    if (record === undefined) return { xid, outcome: 'not-found' };
    if (record.domain !== this.domain) return { xid, outcome: 'foreign', status: record.status };
    if (record.parkedAt !== undefined && options.force !== true) {
      return { xid, outcome: 'parked', status: record.status };
    }
    const step = decide(record, this.clock.now());
    if (step === 'wait' || step === 'none') return { xid, outcome: 'waiting', status: record.status };

    const span = this.telemetry.start('tcc.recover', record);
    const result = await this.telemetry.within(span, () => this.attempt(record, step));
    this.telemetry.end(span, record, result.error);
    this.telemetry.recovered(result.outcome);
    return result;
  }

  private async attempt(
    record: TransactionRecord,
    step: 'confirm' | 'cancel' | 'fail-try',
  ): Promise<RecoveryResult> {
    const { xid } = record;
    // Claim the record: counting the attempt is also the compare-and-set that keeps two
    // workers from driving it at once.
    record.retries += 1;
    if (step === 'fail-try') record.status = 'TRY_FAILED';
    if (step === 'cancel') record.status = 'CANCELLING';
    delete record.parkedAt;
    try {
      await this.log.save(record);
    } catch (error) {
      if (error instanceof OptimisticLockError) return { xid, outcome: 'busy' };
      throw error;
    }
    if (step === 'fail-try') return { xid, outcome: 'try-failed', status: record.status };

    const failure = await this.manager.settle(record, step, undefined, (failed) => {
      if (failed.retries >= this.maxRetries) failed.parkedAt = this.clock.now();
    });
    if (failure === undefined) {
      return { xid, outcome: step === 'confirm' ? 'confirmed' : 'cancelled', status: record.status };
    }
    return {
      xid,
      outcome: record.parkedAt !== undefined ? 'parked' : 'failed',
      status: record.status,
      error: failure.error,
    };
  }
}
