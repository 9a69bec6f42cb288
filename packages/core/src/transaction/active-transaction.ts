import type { TurnBatcher } from '../base/turn-batcher.js';
import type { ResolvedTransactionOptions } from '../participants/transaction-options.js';
import type {
  BranchParent,
  ParticipantRecord,
  TransactionRecord,
  TransactionType,
} from '../storage/record.js';
import { activeTraceparent } from '../telemetry/traceparent.js';
import type { Claim, TryGuard } from './claims.js';
import { Scope } from './scope.js';

/** Where a branch comes from: the fields of the caller's context header. */
export interface BranchOrigin {
  readonly globalId: string;
  readonly xid: string;
  readonly rootDomain: string;
  readonly deadline: number;
  /** The record that enlisted the branch, asked for the outcome if its commands never come. */
  readonly parent: BranchParent;
}

/**
 * A root in its try phase, as seen by the process that began it, or a branch in its try phase,
 * as seen by the service that received it. A root's record is created lazily with the first
 * participant (a transaction that enlists nobody writes nothing). So is a branch's: its create is
 * still the fence against a cancel that came first (DESIGN.md §4), because it comes before any
 * participant's try runs, and a create that finds the record there already says why
 * (`BranchKeeper`: a cancel's tombstone, or the same try sent twice).
 */
export class ActiveTransaction implements TryGuard {
  /** The persisted record, once the first participant is enlisted. */
  record: TransactionRecord | undefined;
  /**
   * The try's claim on its record, written with the record's create and renewed while a
   * participant's try runs: a cancel from another driver (the root's command arriving at another
   * process, recovery after the deadline) waits until the try has ended instead of undoing a
   * try that then goes on. Ended (`endTry`) before the write that closes the try.
   */
  claim: Claim | undefined;
  readonly participants: ParticipantRecord[] = [];
  /** `trying` until the body returns; after that no participant may join. */
  state: 'trying' | 'settling' = 'trying';
  /** The first try that failed. It dooms the transaction even if its caller caught the error. */
  tryFailure: { readonly error: unknown } | undefined;
  readonly scope: Scope;
  readonly xid: string;
  readonly rootDomain: string;
  readonly type: TransactionType;
  /** Where the branch came from (`undefined` for a root). */
  readonly origin: BranchOrigin | undefined;
  /** A root begun with an id: kept this long once finished (ms), to answer a retry with the id. */
  keepFor: number | undefined;
  /**
   * A branch whose try request is still being checked (a signed try's body against its
   * digest): every enlist waits for it first, so no participant is written, and no try runs,
   * for a request that turns out forged.
   */
  gate: (() => Promise<void>) | undefined;
  /** A branch: called once its try has been closed (TRIED or cancelled). */
  onClosed: (() => void) | undefined;
  /**
   * A branch: the create of its record found one there already. Says what that record is
   * (asked once) and gives the error every enlist of this try then fails with.
   */
  onCreateConflict: (() => Promise<unknown>) | undefined;
  /** Remote participants enlisted at once, sharing a write (made by the first such enlist). */
  enlists: TurnBatcher<ParticipantRecord, void> | undefined;
  #writing = false;
  #waiting: (() => void)[] = [];
  #joined = 0;
  #running = 0;
  #quiet: (() => void)[] = [];

  constructor(
    readonly globalId: string,
    readonly domain: string,
    readonly createdAt: number,
    readonly deadline: number,
    readonly options: ResolvedTransactionOptions,
    branch?: BranchOrigin,
  ) {
    this.origin = branch;
    this.xid = branch?.xid ?? globalId;
    this.rootDomain = branch?.rootDomain ?? domain;
    this.type = branch === undefined ? 'ROOT' : 'BRANCH';
    this.scope = new Scope(
      globalId,
      this.xid,
      domain,
      this.rootDomain,
      this.type,
      deadline,
      'try',
      undefined,
      this,
    );
  }

  /**
   * Takes the record's write lock: participants called concurrently (`Promise.all`) would
   * otherwise race each other's compare-and-set. Returns `undefined` when the lock was free,
   * which is the common case and costs no promise.
   */
  lock(): Promise<void> | undefined {
    if (!this.#writing) {
      this.#writing = true;
      return undefined;
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Hands the lock to the next waiter, if any. */
  unlock(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#writing = false;
    else next();
  }

  /** A participant id unique in this record, even when an enlist failed and was undone. */
  nextParticipantId(): string {
    return `p${++this.#joined}`;
  }

  /** Whether a participant is being enlisted or tried now (its claim is renewed only then). */
  get trying(): boolean {
    return this.#running > 0;
  }

  /**
   * Ends the try's claim before the write that closes the try (TRIED, the commit point, or
   * CANCELLING with a claim of its own): renewal stops, and the claim leaves the working copy,
   * so that write releases it. Call once no participant runs (after `quiet`).
   */
  async endTry(): Promise<void> {
    const claim = this.claim;
    if (claim === undefined) return;
    this.claim = undefined;
    const renewing = claim.stop();
    if (renewing !== undefined) await renewing;
    if (this.record?.claim?.owner === claim.owner) delete this.record.claim;
  }

  /** Counts a participant from enlist to the end of its try. */
  started(): void {
    this.#running++;
  }

  finished(): void {
    if (--this.#running === 0) for (const wake of this.#quiet.splice(0)) wake();
  }

  /**
   * Resolves when no participant is being enlisted or tried (`undefined` if none is): the
   * outcome is decided only then, so a try the body did not await cannot run after its confirm
   * or fail unnoticed.
   */
  quiet(): Promise<void> | undefined {
    if (this.#running === 0) return undefined;
    return new Promise((resolve) => this.#quiet.push(resolve));
  }

  newRecord(now: number): TransactionRecord {
    // The trace that began the record, so a recovery job much later can link back to it.
    const traceparent = activeTraceparent();
    const record: TransactionRecord = {
      globalId: this.globalId,
      xid: this.xid,
      domain: this.domain,
      rootDomain: this.rootDomain,
      type: this.type,
      status: 'TRYING',
      participants: this.participants,
      attachments: traceparent === undefined ? {} : { traceparent },
      retries: 0,
      version: 1,
      createdAt: this.createdAt,
      updatedAt: now,
      deadline: this.deadline,
      dueAt: this.deadline,
    };
    if (this.origin !== undefined) record.parent = this.origin.parent;
    if (this.keepFor !== undefined) record.keepFor = this.keepFor;
    return record;
  }
}
