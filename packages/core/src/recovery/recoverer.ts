import { messageOf } from '../base/checks.js';
import type { Clock } from '../base/clock.js';
import { hasCode } from '../base/codes.js';
import { copyRecord } from '../storage/kit/next-version.js';
import type { TransactionRecord } from '../storage/record.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { Claim, Claims } from '../transaction/claims.js';
import { BusyError, LeaseLostError } from '../transaction/errors.js';
import type { OutcomeAnswer } from '../transaction/outcome-reporter.js';
import type { RecordLog } from '../transaction/record-log.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import { decide } from './decision.js';
import { isExhausted, markParked } from './parking.js';

/**
 * How one recovery attempt ended:
 * - `confirmed` / `cancelled`: the record is finished;
 * - `try-failed`: a branch past its deadline was marked TRY_FAILED;
 * - `failed`: a participant threw, or a branch could not ask its parent for the outcome; the
 *   record stays for the next attempt (`error`);
 * - `parked`: it failed and reached `maxRetries`, or was parked already; an operator decides;
 * - `waiting`: nothing to do yet (try still within its deadline, or a branch whose parent has
 *   not decided);
 * - `finished`: the record is a CONFIRMED or CANCELLED tombstone;
 * - `busy`: another driver holds its claim or changed it first (or a branch of it is busy);
 *   `error` is a `BusyError` saying who and for how long where known. Not a failed attempt;
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
   * An operator's retry: drive the record now even if it is parked (it is unparked) or has used
   * up its `maxRetries`. Never while another driver holds its claim (that is `busy`).
   */
  force?: boolean;
}

/** What a driver inside tcc may add: not part of `tcc.recover`'s options (see `RECOVER_SCANNED`). */
export interface AttemptOptions extends RecoverOptions {
  /**
   * The record as a scan has just read it (`findStuck`), to save reading it again. A copy is
   * worked on; if it is no longer the stored version, the attempt reads the record afresh.
   */
  scanned?: TransactionRecord;
}

export interface RecovererConfig {
  readonly domain: string;
  readonly storage: TransactionStorage;
  readonly log: RecordLog;
  readonly manager: TransactionManager;
  readonly claims: Claims;
  readonly clock: Clock;
  readonly telemetry: Telemetry;
  readonly maxRetries: number;
  /** How long past its deadline a branch that tried waits for its parent's command. */
  readonly graceMs: number;
  /** Asks the record that enlisted a branch what it decided (the HTTP transport's query). */
  readonly askParent: (record: TransactionRecord) => Promise<OutcomeAnswer>;
}

/** Runs the next step of one record: the unit of work of every recovery driver. */
export class Recoverer {
  constructor(private readonly config: RecovererConfig) {}

  async recover(xid: string, options: AttemptOptions = {}): Promise<RecoveryResult> {
    const { storage } = this.config;
    const given = options.scanned;
    if (given === undefined) return this.#recover(xid, await storage.get(xid), options);
    const result = await this.#recover(xid, copyRecord(given), options);
    // A scan's copy may be stale: the lost compare-and-set says so, and a fresh read decides.
    return result.outcome === 'busy' && !(result.error instanceof BusyError)
      ? this.#recover(xid, await storage.get(xid), options)
      : result;
  }

  async #recover(
    xid: string,
    record: TransactionRecord | undefined,
    options: RecoverOptions,
  ): Promise<RecoveryResult> {
    const { domain, clock, claims, graceMs, telemetry } = this.config;
    if (record === undefined) return { xid, outcome: 'not-found' };
    if (record.domain !== domain) return { xid, outcome: 'foreign', status: record.status };
    if (record.parkedAt !== undefined && options.force !== true) {
      return { xid, outcome: 'parked', status: record.status };
    }
    const step = decide(record, clock.now(), graceMs);
    if (step === 'none') return { xid, outcome: 'finished', status: record.status };
    if (step === 'wait') return { xid, outcome: 'waiting', status: record.status };
    // Another driver (the process that wrote the commit point, a branch's command, another
    // worker) is running its confirm or cancel.
    const busy = claims.busy(record);
    if (busy !== undefined) return { xid, outcome: 'busy', status: record.status, error: busy };

    const span = telemetry.start('tcc.recover', record);
    let result: RecoveryResult;
    try {
      result = await telemetry.within(span, () => this.#attempt(record, step, options.force === true));
    } catch (error) {
      // A write that failed (the store down): the span still ends, marked with the error.
      telemetry.end(span, record, error);
      throw error;
    }
    telemetry.end(span, record, result.error);
    telemetry.recovered(result.outcome);
    return result;
  }

  async #attempt(
    record: TransactionRecord,
    step: 'confirm' | 'cancel' | 'fail-try' | 'ask',
    force: boolean,
  ): Promise<RecoveryResult> {
    const { xid } = record;
    const { maxRetries, clock } = this.config;
    if (isExhausted(record, maxRetries) && !force) {
      // Attempts that died without writing their failure (a crashed worker) count too.
      markParked(record, clock.now(), `gave up after ${record.retries} attempts`);
      return (await this.#write(record))
        ? { xid, outcome: 'parked', status: record.status }
        : { xid, outcome: 'busy' };
    }
    let phase: 'confirm' | 'cancel' | 'fail-try';
    if (step === 'ask') {
      const asked = await this.#ask(record);
      if (asked.outcome === 'pending') return { xid, outcome: 'waiting', status: record.status };
      if (asked.outcome === 'failed') return asked.result;
      // The parent may have sent its command meanwhile (a parent asked while it was still
      // trying cancels then and there): what the branch holds now says what is left to do.
      const now = await this.config.storage.get(xid);
      if (now?.version !== record.version) return this.#settled(xid, now, asked.outcome);
      phase = asked.outcome;
    } else phase = step;

    // Counting the attempt is also the write that carries this driver's claim.
    record.retries += 1;
    delete record.parkedAt;
    if (phase === 'fail-try') {
      // Nothing to drive: the status says the try is over, and no claim is left behind.
      record.status = 'TRY_FAILED';
      return (await this.#write(record))
        ? { xid, outcome: 'try-failed', status: record.status }
        : { xid, outcome: 'busy' };
    }
    record.status = phase === 'confirm' ? 'CONFIRMING' : 'CANCELLING';
    let claim: Claim;
    try {
      claim = await this.config.claims.take(record);
    } catch (error) {
      if (error instanceof BusyError) return { xid, outcome: 'busy', status: record.status, error };
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) return { xid, outcome: 'busy' };
      throw error;
    }
    const failure = await this.config.manager.settle(claim, phase, undefined, (failed, error) => {
      // A busy branch is another driver at work there, not a failed attempt: it is not counted.
      if (error instanceof BusyError) failed.retries -= 1;
      // The failure's own message (already its lastError) says why it is parked.
      else if (isExhausted(failed, maxRetries)) markParked(failed, clock.now(), messageOf(error));
    });
    if (failure === undefined) {
      return { xid, outcome: phase === 'confirm' ? 'confirmed' : 'cancelled', status: record.status };
    }
    if (failure.error instanceof BusyError || failure.error instanceof LeaseLostError) {
      return { xid, outcome: 'busy', status: record.status, error: failure.error };
    }
    // Parked only if the write that says so landed.
    const parked = failure.recorded && record.parkedAt !== undefined;
    return { xid, outcome: parked ? 'parked' : 'failed', status: record.status, error: failure.error };
  }

  /**
   * Asks a branch's parent what it decided. A parent that cannot be asked (unreachable, or no
   * address known) is a failed attempt, counted and in time parked, for an operator to decide.
   */
  async #ask(
    record: TransactionRecord,
  ): Promise<
    | { readonly outcome: 'confirm' | 'cancel' | 'pending' }
    | { readonly outcome: 'failed'; readonly result: RecoveryResult }
  > {
    const { xid } = record;
    try {
      return await this.config.askParent(record);
    } catch (error) {
      record.retries += 1;
      record.lastError = `asking ${record.parent?.domain ?? 'its parent'} for the outcome failed: ${messageOf(error)}`;
      const parked = isExhausted(record, this.config.maxRetries);
      if (parked) markParked(record, this.config.clock.now(), record.lastError);
      if (!(await this.#write(record))) return { outcome: 'failed', result: { xid, outcome: 'busy' } };
      return {
        outcome: 'failed',
        result: { xid, outcome: parked ? 'parked' : 'failed', status: record.status, error },
      };
    }
  }

  /** A branch that changed while its parent was asked: finished, or driven by someone else. */
  #settled(
    xid: string,
    record: TransactionRecord | undefined,
    decided: 'confirm' | 'cancel',
  ): RecoveryResult {
    if (record === undefined) return { xid, outcome: 'not-found' };
    if (record.status === 'CONFIRMED' || record.status === 'CANCELLED') {
      return { xid, outcome: 'finished', status: record.status };
    }
    const busy = this.config.claims.busy(record);
    return {
      xid,
      outcome: 'busy',
      status: record.status,
      error:
        busy ?? new BusyError(xid, 0, undefined, `${xid} changed while its parent was asked (${decided})`),
    };
  }

  /** Writes the record; `false` if another driver changed it first. */
  async #write(record: TransactionRecord): Promise<boolean> {
    try {
      await this.config.log.save(record);
      return true;
    } catch (error) {
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) return false;
      throw error;
    }
  }
}
