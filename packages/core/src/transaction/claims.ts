import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../base/clock.js';
import { hasCode } from '../base/codes.js';
import type { RecordClaim, TransactionRecord } from '../storage/record.js';
import { BusyError, LeaseLostError } from './errors.js';
import type { RecordLog } from './record-log.js';

/** The shortest wait a busy answer suggests: a claim about to end is often released sooner. */
const MIN_RETRY_AFTER_MS = 50;

/**
 * What the claim of a try needs from its transaction. A try's own writes (each enlist) race a
 * renewal of the same working copy, so renewals take the transaction's write lock; and the
 * claim is renewed only while a participant's try runs, so a body that hangs between calls
 * does not keep its record from recovery for ever.
 */
export interface TryGuard {
  lock(): Promise<void> | undefined;
  unlock(): void;
  /** Whether a participant's try is running (or being enlisted) now. */
  readonly trying: boolean;
}

/**
 * One claim mechanism for every driver of a record's confirm or cancel (DESIGN.md §7): the root
 * settling what it began, a branch running its root's command, `tcc.recover` from the poller,
 * the BullMQ worker or an operator. A claim is written into the record by the same
 * compare-and-set as the driver's first write, with an owner and an expiry; it is renewed on a
 * timer while the driver works (as BullMQ extends a job's lock), and the driver's last write
 * ends it. A driver that finds another's live claim leaves the record alone (`BusyError`).
 *
 * `leaseMs` is `recovery.recoverAfterMs`; 0 turns claims off (every claim has already ended),
 * which suits tests that drive a record from several runtimes by hand, not production.
 */
export class Claims {
  readonly #prefix = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  #count = 0;
  readonly #renewing = new Set<Claim>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly log: RecordLog,
    readonly clock: Clock,
    readonly leaseMs: number,
  ) {}

  /** The live claim of a driver on `record` (someone is running its confirm or cancel), if any. */
  holder(record: TransactionRecord): RecordClaim | undefined {
    const claim = record.claim;
    return claim !== undefined && claim.until > this.clock.now() ? claim : undefined;
  }

  /** A `BusyError` if another driver holds a live claim on `record`. */
  busy(record: TransactionRecord): BusyError | undefined {
    const holder = this.holder(record);
    if (holder === undefined) return undefined;
    return new BusyError(
      record.xid,
      Math.max(MIN_RETRY_AFTER_MS, holder.until - this.clock.now()),
      holder.owner,
    );
  }

  /**
   * Claims `record` for a new driver: the claim goes into the working copy, for the caller to
   * write with its first change (such as its commit point) in one compare-and-set, then to call
   * `written()` (or `undo()` if the write failed). Throws `BusyError`, changing nothing, if
   * another driver's claim is live.
   */
  claimFor(record: TransactionRecord, guard?: TryGuard): Claim {
    const busy = this.busy(record);
    if (busy !== undefined) throw busy;
    return new Claim(this, record, `${this.#prefix}#${++this.#count}`, guard);
  }

  /** `claimFor` and its write (a compare-and-set of the whole record) in one step. */
  async take(record: TransactionRecord): Promise<Claim> {
    const claim = this.claimFor(record);
    try {
      await this.log.save(record);
    } catch (error) {
      claim.undo();
      throw error;
    }
    claim.written();
    return claim;
  }

  /** Stops renewing every claim (the runtime is stopping); each lapses by itself. */
  stop(): void {
    this.#renewing.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** @internal */
  watch(claim: Claim): void {
    this.#renewing.add(claim);
    if (this.#timer !== undefined) return;
    // One timer for every claim of this runtime. It is not made and cleared per transaction
    // (most claims end long before a tick): a tick that finds no claim at all stops it.
    this.#timer = setInterval(
      () => {
        if (this.#renewing.size === 0) {
          clearInterval(this.#timer);
          this.#timer = undefined;
          return;
        }
        const now = this.clock.now();
        for (const c of this.#renewing) c.renewIfDue(now);
      },
      Math.max(1, Math.floor(this.leaseMs / 3)),
    );
    this.#timer.unref();
  }

  /** @internal */
  unwatch(claim: Claim): void {
    this.#renewing.delete(claim);
  }
}

/**
 * A driver's claim on the record it works on (the same object as its working copy). Renewal
 * writes go through here, one at a time, so they never overlap the driver's own writes: the
 * driver calls `stop()` before its last write.
 */
export class Claim {
  #lost: LeaseLostError | undefined;
  #renewedAt: number;
  #renewal: Promise<void> | undefined;
  #stopped = false;
  readonly #previous: RecordClaim | undefined;

  constructor(
    private readonly claims: Claims,
    readonly record: TransactionRecord,
    readonly owner: string,
    /** Set for the claim of a try (see `TryGuard`). */
    private readonly guard?: TryGuard,
  ) {
    const now = claims.clock.now();
    this.#renewedAt = now;
    this.#previous = record.claim;
    record.claim = { owner, until: now + claims.leaseMs };
  }

  /**
   * Puts a fresh expiry into the working copy, for the holder's next write (a try's enlist) to
   * carry: that write renews the claim, so a try is never started under a claim about to lapse.
   */
  extend(): void {
    const now = this.claims.clock.now();
    this.record.claim = { owner: this.owner, until: now + this.claims.leaseMs };
    this.#renewedAt = now;
  }

  /** The write that carries the claim landed: from now on it is renewed while the driver works. */
  written(): void {
    if (this.claims.leaseMs > 0) this.claims.watch(this);
  }

  /** The write that carried the claim failed: the working copy gets back what it had. */
  undo(): void {
    if (this.#previous === undefined) delete this.record.claim;
    else this.record.claim = this.#previous;
  }

  /**
   * Whether this driver may still act on the record: its claim was not taken over and has not
   * lapsed (a renewal that could not reach the store does not extend it).
   */
  get held(): boolean {
    if (this.#lost !== undefined) return false;
    if (this.claims.leaseMs === 0) return true;
    const claim = this.record.claim;
    return claim?.owner === this.owner && claim.until > this.claims.clock.now();
  }

  /** Why the driver must stop: the claim was taken over, or it lapsed. */
  lost(): LeaseLostError {
    return this.#lost ?? new LeaseLostError(this.record.xid);
  }

  /**
   * Ends renewal. Returns the wait for a renewal in flight, so that the driver's next write is
   * the only one (`undefined`, and no promise made, when none is).
   */
  stop(): Promise<void> | undefined {
    this.#stopped = true;
    this.claims.unwatch(this);
    const renewal = this.#renewal;
    return renewal === undefined ? undefined : renewal.then(() => this.stop());
  }

  /** Renews the claim once a third of it has passed, unless a renewal is already running. */
  renewIfDue(now: number): void {
    if (this.#renewal !== undefined || this.#lost !== undefined) return;
    if (this.guard !== undefined && !this.guard.trying) return;
    if (now - this.#renewedAt < this.claims.leaseMs / 3) return;
    this.#renewal = this.#renew().finally(() => {
      this.#renewal = undefined;
    });
  }

  async #renew(): Promise<void> {
    const wait = this.guard?.lock();
    if (wait !== undefined) await wait;
    try {
      // Stopped while it waited for the lock: the driver's own next write comes instead.
      if (this.#stopped) return;
      const { clock, leaseMs, log } = this.claims;
      const now = clock.now();
      const record = this.record;
      const previous = record.claim;
      record.claim = { owner: this.owner, until: now + leaseMs };
      try {
        await log.save(record);
        this.#renewedAt = now;
      } catch (error) {
        // On the primary, not on its replicas: the renewal stands there, and the next one may
        // be acknowledged. (Store errors by code: the store may be built on another copy of core.)
        if (hasCode(error, 'TCC_REPLICATION_TIMEOUT')) {
          this.#renewedAt = now;
          return;
        }
        if (previous === undefined) delete record.claim;
        else record.claim = previous;
        // Lost to another writer: only a driver that found this claim lapsed writes over it.
        // Any other failure leaves the claim as it was, to lapse unless a later tick renews it.
        if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) {
          this.#lost = new LeaseLostError(record.xid, error);
          this.claims.unwatch(this);
        }
      }
    } finally {
      this.guard?.unlock();
    }
  }
}
