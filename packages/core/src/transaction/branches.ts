import type { Clock } from '../clock.js';
import { DuplicateTransactionError, OptimisticLockError } from '../storage/errors.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { ActiveTransaction, BranchOrigin } from './active-transaction.js';
import { TransactionHangingError } from './errors.js';
import type { SettlePhase } from './phase-driver.js';
import type { TransactionRecord } from './record.js';
import type { RecordLog } from './record-log.js';
import type { TransactionManager } from './transaction-manager.js';

/** Attachment holding the reply of a branch's try, replayed to a duplicate try. */
export const REPLY_ATTACHMENT = 'tcc.reply';

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

/** Result of a confirm or cancel command: `done` (also when there was nothing left to do). */
export type BranchCommandResult =
  | { readonly kind: 'done'; readonly detail: string }
  | { readonly kind: 'not-found'; readonly detail: string }
  | { readonly kind: 'conflict'; readonly detail: string }
  | { readonly kind: 'failed'; readonly detail: string; readonly error: unknown };

export interface BranchKeeperConfig {
  readonly domain: string;
  readonly clock: Clock;
  readonly log: RecordLog;
  readonly manager: TransactionManager;
  readonly telemetry: Telemetry;
  /** How long a CANCELLED tombstone of an empty rollback is kept. */
  readonly tombstoneMs: number;
}

/** Replies larger than this are not kept for replay (a duplicate try then gets a short note). */
const MAX_STORED_REPLY_BYTES = 16 * 1024;
/** Lost compare-and-sets a command retries before it reports a conflict. */
const COMMAND_ATTEMPTS = 5;

/**
 * The callee's side of remote branches (DESIGN.md §4): opens and closes a branch's try, and
 * runs the root's confirm and cancel commands against the branch record, handling the three
 * anomalies: repeated commands are no-ops, a cancel before the try leaves a CANCELLED
 * tombstone, and a try after that tombstone (or after the deadline) is refused unrun.
 */
export class BranchKeeper {
  /** Tries running in this process, by xid: a command for one waits until it has ended. */
  readonly #running = new Map<string, Promise<void>>();

  constructor(private readonly config: BranchKeeperConfig) {}

  /** Writes the branch record (TRYING) before any of the try runs, or says why not. */
  async open(origin: BranchOrigin): Promise<BranchOpening> {
    const { clock, log, manager } = this.config;
    if (clock.now() > origin.deadline) {
      return {
        kind: 'refused',
        error: new TransactionHangingError(
          origin.globalId,
          `it arrived after the deadline of the root (${new Date(origin.deadline).toISOString()})`,
        ),
      };
    }
    const tx = manager.openBranch(origin);
    const record = tx.newRecord(clock.now());
    try {
      await log.create(record);
    } catch (error) {
      if (!(error instanceof DuplicateTransactionError)) throw error;
      return this.#seenBefore(origin);
    }
    tx.record = record;
    let done!: () => void;
    this.#running.set(origin.xid, new Promise<void>((resolve) => (done = resolve)));
    tx.onClosed = () => {
      this.#running.delete(origin.xid);
      done();
    };
    return { kind: 'open', tx };
  }

  async #seenBefore(origin: BranchOrigin): Promise<BranchOpening> {
    const stored = await this.config.log.storage.get(origin.xid);
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
   * cancelled at once. Returns whether the branch is TRIED.
   */
  async close(
    tx: ActiveTransaction,
    succeeded: boolean,
    reply: BranchReply | undefined,
  ): Promise<{ readonly tried: boolean; readonly error?: unknown }> {
    try {
      const running = tx.quiet();
      if (running !== undefined) await running;
      tx.state = 'settling';
      const record = tx.record!;
      const { clock, log, manager } = this.config;
      const failure =
        tx.tryFailure?.error ??
        (succeeded
          ? clock.now() > tx.deadline
            ? new TransactionHangingError(tx.globalId, 'the try ended after the deadline of the root')
            : undefined
          : undefined);
      if (succeeded && failure === undefined) {
        record.status = 'TRIED';
        if (reply !== undefined && reply.body.length <= MAX_STORED_REPLY_BYTES) {
          record.attachments[REPLY_ATTACHMENT] = encodeReply(reply);
        }
        try {
          await log.save(record);
          return { tried: true };
        } catch (error) {
          record.status = 'TRYING';
          delete record.attachments[REPLY_ATTACHMENT];
          // Lost: a cancel or recovery took the branch while it was trying; it cancels it.
          if (error instanceof OptimisticLockError) {
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
      record.status = 'CANCELLING';
      try {
        await log.save(record);
      } catch {
        // Lost to a cancel command (which cancels it) or the store is down (the root's cancel
        // or recovery after the deadline finishes it): the try is refused either way.
        record.status = 'TRYING';
        return { tried: false, error: failure };
      }
      await manager.settle(record, 'cancel');
      return { tried: false, error: failure };
    } finally {
      tx.onClosed?.();
    }
  }

  /** Runs the root's `confirm` or `cancel` of branch `xid`. */
  async command(action: SettlePhase, globalId: string, xid: string): Promise<BranchCommandResult> {
    for (let attempt = 0; attempt < COMMAND_ATTEMPTS; attempt++) {
      const running = this.#running.get(xid);
      // A try still running here would be undone by a cancel that ran before it ended.
      if (running !== undefined) await running;
      const record = await this.config.log.storage.get(xid);
      const result =
        action === 'confirm'
          ? await this.#confirm(record, globalId, xid)
          : await this.#cancel(record, globalId, xid);
      if (result !== 'retry') return result;
    }
    return { kind: 'conflict', detail: `branch ${xid} kept changing under the ${action}; try again` };
  }

  async #confirm(
    record: TransactionRecord | undefined,
    globalId: string,
    xid: string,
  ): Promise<BranchCommandResult | 'retry'> {
    if (!this.#ours(record, globalId)) {
      return {
        kind: 'not-found',
        detail: `no branch ${xid} of transaction ${globalId} in ${this.config.domain}`,
      };
    }
    switch (record.status) {
      case 'CONFIRMED':
        return { kind: 'done', detail: 'already confirmed' };
      case 'TRIED':
        record.status = 'CONFIRMING';
        if (!(await this.#write(record))) return 'retry';
        return this.#settle(record, 'confirm');
      case 'CONFIRMING':
        return this.#settle(record, 'confirm');
      case 'TRYING':
        return { kind: 'conflict', detail: `branch ${xid} has not finished its try` };
      default:
        return { kind: 'conflict', detail: `branch ${xid} is ${record.status}; it cannot be confirmed` };
    }
  }

  async #cancel(
    record: TransactionRecord | undefined,
    globalId: string,
    xid: string,
  ): Promise<BranchCommandResult | 'retry'> {
    if (record === undefined) {
      // Empty rollback: the try never arrived (or has not yet). The tombstone fences it out.
      if (!(await this.#tombstone(globalId, xid))) return 'retry';
      return { kind: 'done', detail: 'empty rollback: the try never arrived' };
    }
    if (!this.#ours(record, globalId)) {
      return {
        kind: 'not-found',
        detail: `no branch ${xid} of transaction ${globalId} in ${this.config.domain}`,
      };
    }
    switch (record.status) {
      case 'CANCELLED':
        return { kind: 'done', detail: 'already cancelled' };
      case 'TRYING':
      case 'TRIED':
      case 'TRY_FAILED':
        record.status = 'CANCELLING';
        if (!(await this.#write(record))) return 'retry';
        return this.#settle(record, 'cancel');
      case 'CANCELLING':
        return this.#settle(record, 'cancel');
      default:
        return { kind: 'conflict', detail: `branch ${xid} is ${record.status}; it cannot be cancelled` };
    }
  }

  #ours(record: TransactionRecord | undefined, globalId: string): record is TransactionRecord {
    return (
      record !== undefined &&
      record.type === 'BRANCH' &&
      record.domain === this.config.domain &&
      record.globalId === globalId
    );
  }

  async #write(record: TransactionRecord): Promise<boolean> {
    try {
      await this.config.log.save(record);
      return true;
    } catch (error) {
      if (error instanceof OptimisticLockError) return false;
      throw error;
    }
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
      expiresAt: now + tombstoneMs,
    };
    try {
      await log.storage.create(record);
      return true;
    } catch (error) {
      if (error instanceof DuplicateTransactionError) return false;
      throw error;
    }
  }

  async #settle(record: TransactionRecord, phase: SettlePhase): Promise<BranchCommandResult> {
    const failure = await this.config.manager.settle(record, phase);
    if (failure === undefined)
      return { kind: 'done', detail: phase === 'confirm' ? 'confirmed' : 'cancelled' };
    return {
      kind: 'failed',
      detail: `${phase} of branch ${record.xid} failed; it is kept ${record.status} for a retry`,
      error: failure.error,
    };
  }
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
