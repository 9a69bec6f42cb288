import type { Clock } from '../base/clock.js';
import { hasCode } from '../base/codes.js';
import { TransactionHangingError } from '../storage/errors.js';
import { copyRecord } from '../storage/kit/next-version.js';
import type { TransactionRecord } from '../storage/record.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { ActiveTransaction, BranchOrigin } from '../transaction/active-transaction.js';
import type { Claim, Claims } from '../transaction/claims.js';
import { BusyError, TransactionStateError } from '../transaction/errors.js';
import type { SettlePhase } from '../transaction/phase-driver.js';
import type { RecordLog } from '../transaction/record-log.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import { sleep, within } from '../transaction/waits.js';
import { BranchFailedError, BranchNotFoundError, DuplicateTryError } from './errors.js';

/** Attachment holding the reply of a branch's try, replayed to a duplicate try. */
const REPLY_ATTACHMENT = 'tcc.reply';

/** How a branch's try request was answered, kept so that a retried request gets the same answer. */
export interface BranchReply {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

/** What to do with a try request that carries a context header. */
export type BranchOpening =
  | { readonly kind: 'open'; readonly tx: ActiveTransaction }
  /** The same try came again (the caller retried): answer as the first one was answered. */
  | { readonly kind: 'duplicate'; readonly reply: BranchReply | undefined; readonly status: string }
  | { readonly kind: 'refused'; readonly error: TransactionHangingError };

/** A try whose branch record was there already: answered as the first one was, or refused. */
export type BranchSeen = Exclude<BranchOpening, { readonly kind: 'open' }>;

export interface BranchKeeperConfig {
  readonly domain: string;
  readonly clock: Clock;
  readonly log: RecordLog;
  readonly manager: TransactionManager;
  readonly claims: Claims;
  readonly telemetry: Telemetry;
  /** How long a CANCELLED tombstone of an empty rollback is kept. */
  readonly tombstoneMs: number;
}

/** Replies larger than this are not kept for replay (a duplicate try then gets a short note). */
const MAX_STORED_REPLY_BYTES = 16 * 1024;
/** Lost compare-and-sets a command retries before it answers busy. */
const COMMAND_ATTEMPTS = 5;
/** How long a command waits for one of the same branch still running in this process. */
const COMMAND_WAIT_MS = 5_000;
/** The busy answer's retry hint when the other driver is a command of this process, or a writer that kept winning. */
const BUSY_RETRY_MS = 100;
/** Pauses (ms) between reads of a try that runs in another process, waited for by its duplicate. */
const DUPLICATE_POLL_MS = [10, 25, 50, 100, 250] as const;
/**
 * Most TRIED records kept for the command that follows (on a linearizable store; a record
 * holds its kept reply, up to 16 KB). A command that goes to another process leaves its copy
 * here until its deadline passes or newer ones push it out; a command that finds none reads.
 */
const MAX_KEPT_RECORDS = 256;
/** What a command's step returns when another writer changed the branch first: read it again. */
const RETRY = Symbol('retry');

/**
 * The callee's side of remote branches (DESIGN.md §4): opens and closes a branch's try, and
 * runs the root's confirm and cancel commands against the branch record, handling the three
 * anomalies: repeated commands are no-ops, a cancel before the try leaves a CANCELLED
 * tombstone, and a try after that tombstone (or after the deadline) is refused unrun.
 */
export class BranchKeeper {
  /** Tries running in this process, by xid: a command for one waits until it has ended. */
  readonly #running = new Map<string, { readonly ended: Promise<void>; readonly deadline: number }>();
  /** Commands running here, by xid: a second one for the same branch waits for the first. */
  readonly #commands = new Map<string, Promise<void>>();
  /** Tries whose record was found there already: what it was (a replay or a refusal). */
  readonly #seen = new WeakMap<ActiveTransaction, BranchSeen>();
  /**
   * A copy of each TRIED record this process wrote, by xid, while the store is linearizable:
   * the first attempt of the branch's command starts from it instead of reading the record.
   */
  readonly #kept = new Map<string, TransactionRecord>();

  constructor(private readonly config: BranchKeeperConfig) {}

  /**
   * Opens the try of a branch, or says why not. Nothing is written yet: the branch record is
   * created with its first participant (one write instead of two), which is still before any
   * participant's try runs, so a cancel that came first (its tombstone) or the same try sent
   * twice is found by that create and the participant is refused unrun (`onCreateConflict`). A try
   * that enlists nobody has no effect to fence; `close` creates its record as TRIED.
   */
  async open(origin: BranchOrigin): Promise<BranchOpening> {
    const { clock, manager } = this.config;
    if (clock.now() > origin.deadline) {
      return {
        kind: 'refused',
        error: new TransactionHangingError(
          origin.globalId,
          `it arrived after the deadline of the root (${new Date(origin.deadline).toISOString()})`,
        ),
      };
    }
    const running = this.#running.get(origin.xid);
    if (running !== undefined) {
      // The same try, sent again while the first is still running here (the caller timed out
      // and retried): wait for the first, bounded by the deadline, and answer as it was answered.
      await untilEndedOrDeadline(running, clock);
      return this.#seenBefore(origin);
    }
    const tx = manager.openBranch(origin);
    let seen: Promise<unknown> | undefined;
    tx.onCreateConflict = () => {
      seen ??= this.#seenBefore(origin).then((opening) => {
        this.#seen.set(tx, opening);
        return opening.kind === 'refused'
          ? opening.error
          : new DuplicateTryError(origin.globalId, origin.xid);
      });
      return seen;
    };
    let done!: () => void;
    this.#running.set(origin.xid, {
      ended: new Promise<void>((resolve) => (done = resolve)),
      deadline: origin.deadline,
    });
    tx.onClosed = () => {
      this.#running.delete(origin.xid);
      done();
    };
    return { kind: 'open', tx };
  }

  /**
   * What a try whose branch record is there already gets: the first try's answer, once that try
   * has ended (it may still be running, here or in another process of this service: the
   * duplicate waits for it, up to the deadline), or a refusal if the branch was cancelled.
   */
  async #seenBefore(origin: BranchOrigin): Promise<BranchSeen> {
    const { clock, log } = this.config;
    let stored = await log.storage.get(origin.xid);
    for (let i = 0; stored?.status === 'TRYING' && stored.globalId === origin.globalId; i++) {
      const left = origin.deadline - clock.now();
      if (left <= 0) {
        return {
          kind: 'refused',
          error: new TransactionHangingError(
            origin.globalId,
            `the first try of branch ${origin.xid} did not end before the deadline`,
          ),
        };
      }
      // Polled, not awaited in this process: the try running here under this xid is this very
      // duplicate (a first try running here was waited for by `open`).
      await sleep(Math.min(left, DUPLICATE_POLL_MS[Math.min(i, DUPLICATE_POLL_MS.length - 1)]!));
      stored = await log.storage.get(origin.xid);
    }
    if (stored === undefined || stored.globalId !== origin.globalId) {
      // Gone between the create and this read (an expired tombstone), or an xid of another
      // transaction: either way this try must not run.
      return {
        kind: 'refused',
        error: new TransactionHangingError(origin.globalId, `branch ${origin.xid} cannot be opened`),
      };
    }
    switch (stored.status) {
      case 'CANCELLING':
      case 'CANCELLED':
      case 'TRY_FAILED':
        return {
          kind: 'refused',
          error: new TransactionHangingError(
            origin.globalId,
            `branch ${origin.xid} was already ${stored.status === 'TRY_FAILED' ? 'given up' : 'cancelled'}`,
          ),
        };
      default:
        return { kind: 'duplicate', reply: storedReply(stored), status: stored.status };
    }
  }

  /**
   * Ends the try of a branch once its handler has answered: TRIED (with the reply kept for a
   * duplicate try) if `succeeded` and no try in it failed, else every participant enlisted is
   * cancelled at once. Returns whether the branch is TRIED, or (`seen`) how to answer a try
   * whose record was there already: as the first one was answered, or refused.
   */
  async close(
    tx: ActiveTransaction,
    succeeded: boolean,
    reply: BranchReply | undefined,
  ): Promise<{
    readonly tried: boolean;
    readonly error?: unknown;
    readonly seen?: BranchSeen;
  }> {
    try {
      const running = tx.quiet();
      if (running !== undefined) await running;
      tx.state = 'settling';
      // The write below (TRIED, or CANCELLING with a claim of its own) releases the try's claim.
      await tx.endTry();
      const seen = this.#seen.get(tx);
      if (seen !== undefined) return { tried: false, seen };
      const record = tx.record;
      const { clock, log, manager } = this.config;
      const failure =
        tx.tryFailure?.error ??
        (succeeded
          ? clock.now() > tx.deadline
            ? new TransactionHangingError(tx.globalId, 'the try ended after the deadline of the root')
            : undefined
          : undefined);
      if (succeeded && failure === undefined) {
        const tried = record ?? tx.newRecord(clock.now());
        tried.status = 'TRIED';
        if (reply !== undefined && reply.body.length <= MAX_STORED_REPLY_BYTES) {
          tried.attachments[REPLY_ATTACHMENT] = encodeReply(reply);
        }
        try {
          // A try that enlisted nobody is created TRIED in one write: a cancel's tombstone
          // or the same try sent again makes that create fail like a first enlist's would.
          if (record === undefined) await log.create(tried);
          else await log.save(tried);
          tx.record = tried;
          this.#keep(tried);
          return { tried: true };
        } catch (error) {
          tried.status = 'TRYING';
          delete tried.attachments[REPLY_ATTACHMENT];
          if (record === undefined && hasCode(error, 'TCC_DUPLICATE_TRANSACTION')) {
            await tx.onCreateConflict?.().catch(() => undefined);
            const found = this.#seen.get(tx);
            if (found !== undefined) return { tried: false, seen: found };
          }
          // Lost: a cancel or recovery took the branch while it was trying; it cancels it.
          if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) {
            return {
              tried: false,
              error: new TransactionHangingError(
                tx.globalId,
                `branch ${tx.xid} was cancelled while it was trying`,
              ),
            };
          }
          return { tried: false, error };
        }
      }
      // Nothing enlisted, nothing written: there is nothing to cancel (the root's cancel
      // leaves the tombstone that fences out a try sent again).
      if (record === undefined) return { tried: false, error: failure };
      record.status = 'CANCELLING';
      let claim: Claim;
      try {
        claim = await this.config.claims.take(record);
      } catch {
        // Lost to a cancel command (which cancels it) or the store is down (the root's cancel
        // or recovery after the deadline finishes it): the try is refused either way.
        record.status = 'TRYING';
        return { tried: false, error: failure };
      }
      await manager.settle(claim, 'cancel');
      return { tried: false, error: failure };
    } finally {
      tx.onClosed?.();
    }
  }

  /**
   * Runs the root's `confirm` or `cancel` of branch `xid`; resolves with what was done (also
   * when nothing was left to do). Refused with `BusyError` when another driver holds the
   * branch's claim (the root asks again after `retryAfterMs`), `BranchNotFoundError`,
   * `TransactionStateError` (a branch that cannot take this command) or `BranchFailedError`.
   */
  async command(action: SettlePhase, globalId: string, xid: string): Promise<string> {
    // One command per branch at a time in this process: a repeated confirm (the root's retry
    // while the first is still running) waits and then finds the tombstone, instead of running
    // the participants' confirms a second time alongside the first.
    const previous = this.#commands.get(xid);
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    this.#commands.set(xid, turn);
    try {
      if (previous !== undefined && !(await within(previous, COMMAND_WAIT_MS))) {
        // A participant's confirm or cancel that does not end must not hold every later
        // command of the branch: the root records this answer and sends it again later.
        throw new BusyError(
          xid,
          BUSY_RETRY_MS,
          undefined,
          `another command of branch ${xid} is still running here; try again`,
        );
      }
      return await this.#command(action, globalId, xid);
    } finally {
      if (this.#commands.get(xid) === turn) this.#commands.delete(xid);
      release();
    }
  }

  async #command(action: SettlePhase, globalId: string, xid: string): Promise<string> {
    for (let attempt = 0; attempt < COMMAND_ATTEMPTS; attempt++) {
      const running = this.#running.get(xid);
      // A try still running here would be undone by a cancel that ran before it ended. The
      // wait ends at the branch's deadline: a try still running then is too late to be
      // TRIED (close refuses it), and the command goes on (a cancel fences it out).
      if (running !== undefined) await untilEndedOrDeadline(running, this.config.clock);
      // A kept copy (taken once: later attempts find none) is what a read right after TRIED
      // would have returned; if the record moved on since, the compare-and-set fails and it is read.
      const kept = this.#takeKept(xid);
      const record = kept ?? (await this.config.log.storage.get(xid));
      const result =
        action === 'confirm'
          ? await this.#confirm(record, globalId, xid)
          : await this.#cancel(record, globalId, xid);
      if (result !== RETRY) return result;
      // Not an attempt of its own: the copy only stood in for the first read.
      if (kept !== undefined) attempt--;
    }
    throw new BusyError(
      xid,
      BUSY_RETRY_MS,
      undefined,
      `branch ${xid} kept changing under the ${action}; try again`,
    );
  }

  async #confirm(
    record: TransactionRecord | undefined,
    globalId: string,
    xid: string,
  ): Promise<string | typeof RETRY> {
    if (!this.#ours(record, globalId)) {
      throw new BranchNotFoundError(this.config.domain, globalId, xid);
    }
    switch (record.status) {
      case 'CONFIRMED':
        return 'already confirmed';
      // The decision is the root's (its CONFIRMING); the branch's CONFIRMING write is the one
      // that carries this driver's claim, so its own recovery, or a second command, cannot run
      // the same confirms alongside it. A crash part way leaves CONFIRMING, which recovery or the
      // root's next command finishes; a participant already confirmed is not confirmed again.
      case 'TRIED':
      case 'CONFIRMING':
        return this.#drive(record, 'confirm');
      case 'TRYING':
        throw new TransactionStateError(`branch ${xid} has not finished its try`);
      default:
        throw new TransactionStateError(`branch ${xid} is ${record.status}; it cannot be confirmed`);
    }
  }

  async #cancel(
    record: TransactionRecord | undefined,
    globalId: string,
    xid: string,
  ): Promise<string | typeof RETRY> {
    if (record === undefined) {
      // Empty rollback: the try never arrived (or has not yet). The tombstone fences it out.
      if (!(await this.#tombstone(globalId, xid))) return RETRY;
      return 'empty rollback: the try never arrived';
    }
    if (!this.#ours(record, globalId)) {
      throw new BranchNotFoundError(this.config.domain, globalId, xid);
    }
    switch (record.status) {
      case 'CANCELLED':
        return 'already cancelled';
      // TRYING: the try may still be running (in another process of this service): the
      // CANCELLING write is the compare-and-set that makes its close fail, so it cannot become
      // TRIED after this. In every case that write carries this driver's claim.
      case 'TRYING':
      case 'TRIED':
      case 'TRY_FAILED':
      case 'CANCELLING':
        return this.#drive(record, 'cancel');
      default:
        throw new TransactionStateError(`branch ${xid} is ${record.status}; it cannot be cancelled`);
    }
  }

  #keep(record: TransactionRecord): void {
    if (this.config.log.storage.linearizable !== true) return;
    const now = this.config.clock.now();
    // Oldest first: those past their deadline (the command went elsewhere, or comes late and
    // reads), then any beyond the bound.
    for (const [xid, kept] of this.#kept) {
      if (this.#kept.size < MAX_KEPT_RECORDS && kept.deadline > now) break;
      this.#kept.delete(xid);
    }
    // A copy: the command changes the record it starts from, and so may this try's transaction.
    this.#kept.set(record.xid, copyRecord(record));
  }

  /**
   * The kept copy of `xid`'s record, once. Not past the branch's deadline: a command that late
   * reads, so that a copy never outlives the record's tombstone (a record created again after
   * it expired starts at version 1 again, as the copy of a record created TRIED may be).
   */
  #takeKept(xid: string): TransactionRecord | undefined {
    const record = this.#kept.get(xid);
    if (record === undefined) return undefined;
    this.#kept.delete(xid);
    return record.deadline > this.config.clock.now() ? record : undefined;
  }

  #ours(record: TransactionRecord | undefined, globalId: string): record is TransactionRecord {
    return (
      record !== undefined &&
      record.type === 'BRANCH' &&
      record.domain === this.config.domain &&
      record.globalId === globalId
    );
  }

  async #tombstone(globalId: string, xid: string): Promise<boolean> {
    const { clock, domain, log, tombstoneMs } = this.config;
    const now = clock.now();
    const record: TransactionRecord = {
      globalId,
      xid,
      domain,
      // Unknown here (no try came); the tombstone only has to fence the try out.
      rootDomain: '',
      type: 'BRANCH',
      status: 'CANCELLED',
      participants: [],
      attachments: {},
      retries: 0,
      version: 1,
      createdAt: now,
      updatedAt: now,
      deadline: now,
      dueAt: now,
      expiresAt: now + tombstoneMs,
    };
    try {
      await log.storage.create(record);
      return true;
    } catch (error) {
      if (hasCode(error, 'TCC_DUPLICATE_TRANSACTION')) return false;
      throw error;
    }
  }

  /**
   * Claims the branch (writing CONFIRMING or CANCELLING with the claim) and runs the phase.
   * Another driver's live claim is a busy answer; a record changed since it was read, a retry.
   */
  async #drive(record: TransactionRecord, phase: SettlePhase): Promise<string | typeof RETRY> {
    record.status = phase === 'confirm' ? 'CONFIRMING' : 'CANCELLING';
    let claim: Claim;
    try {
      claim = await this.config.claims.take(record);
    } catch (error) {
      // Another driver's live claim (TCC_BUSY) is the answer as it is.
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) return RETRY;
      throw error;
    }
    const failure = await this.config.manager.settle(claim, phase);
    if (failure === undefined) return phase === 'confirm' ? 'confirmed' : 'cancelled';
    // A branch of this one was busy, or this driver's claim was taken over: another driver is at
    // work, and the root should ask again rather than count a failure.
    if (hasCode(failure.error, 'TCC_BUSY')) throw failure.error;
    if (hasCode(failure.error, 'TCC_LEASE_LOST')) {
      throw new BusyError(record.xid, BUSY_RETRY_MS, undefined, failure.error.message);
    }
    throw new BranchFailedError(
      `${phase} of branch ${record.xid} failed; it is kept ${record.status} for a retry`,
      failure.error,
    );
  }
}

/** Waits for a running try to end, but not past its deadline. */
async function untilEndedOrDeadline(
  running: { readonly ended: Promise<void>; readonly deadline: number },
  clock: Clock,
): Promise<void> {
  await within(running.ended, running.deadline - clock.now());
}

function encodeReply(reply: BranchReply): string {
  return JSON.stringify({ s: reply.status, t: reply.contentType, b: reply.body.toString('base64') });
}

function storedReply(record: TransactionRecord): BranchReply | undefined {
  const raw = record.attachments[REPLY_ATTACHMENT];
  if (raw === undefined) return undefined;
  try {
    const { s, t, b } = JSON.parse(raw) as { s: number; t?: string; b: string };
    return { status: s, contentType: t, body: Buffer.from(b, 'base64') };
  } catch {
    return undefined;
  }
}
