import { messageOf } from '../base/checks.js';
import type { TccCode } from '../base/codes.js';
import { TccError } from '../base/errors.js';

/**
 * An error about one transaction, found by its `globalId`: what failed is in the log under that
 * id, so this is what to look up before anything is retried.
 */
export class TransactionError extends TccError {
  readonly globalId: string;

  constructor(code: TccCode, globalId: string, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.globalId = globalId;
  }
}

/** A `MANDATORY` compensable method was called outside a transaction. */
export class TransactionRequiredError extends TccError {
  constructor(action: string) {
    super(
      'TCC_TRANSACTION_REQUIRED',
      `${action} has propagation MANDATORY and was called outside a transaction`,
    );
  }
}

/** The try phase ran past its deadline: the transaction was cancelled instead of confirmed. */
export class DeadlineExceededError extends TransactionError {
  constructor(globalId: string, deadline: number, detail: string, cause?: unknown) {
    super(
      'TCC_DEADLINE_EXCEEDED',
      globalId,
      `transaction ${globalId} passed its try deadline (${new Date(deadline).toISOString()}): ${detail}`,
      cause,
    );
  }
}

/**
 * The transaction is committed (CONFIRMING is written) but a confirm threw. The outcome stays
 * "confirmed": recovery retries what is left. `cause` is the participant's error.
 */
export class ConfirmFailedError extends TransactionError {
  readonly participant: string;

  constructor(globalId: string, participant: string, cause: unknown) {
    super(
      'TCC_CONFIRM_FAILED',
      globalId,
      `transaction ${globalId} is committed but the confirm of ${participant} failed` +
        ` (${messageOf(cause)}); recovery will retry it`,
      cause,
    );
    this.participant = participant;
  }
}

/**
 * The commit point (CONFIRMING) could not be written, so the transaction was cancelled
 * instead: every participant's try is undone. `cause` is the store's error.
 */
export class CommitFailedError extends TransactionError {
  constructor(globalId: string, cause: unknown) {
    super(
      'TCC_COMMIT_FAILED',
      globalId,
      `transaction ${globalId} could not write its commit point (${messageOf(cause)}), so it was cancelled`,
      cause,
    );
  }
}

/**
 * The store failed at the commit point and could not be asked what it kept: the transaction
 * will be confirmed or cancelled by recovery, whichever the store holds. Do not retry the
 * business operation blindly; look the transaction up by `globalId`.
 */
export class OutcomeUnknownError extends TransactionError {
  constructor(globalId: string, cause: unknown) {
    super(
      'TCC_OUTCOME_UNKNOWN',
      globalId,
      `transaction ${globalId}: the store failed at the commit point (${messageOf(cause)}) and the outcome is` +
        ' not known here; recovery will finish it as the store has it (look it up by globalId before retrying)',
      cause,
    );
  }
}

/**
 * This driver's claim on a record lapsed or was taken over (another process found it expired);
 * it stopped before the next participant and wrote nothing more.
 */
export class LeaseLostError extends TccError {
  readonly xid: string;

  constructor(xid: string, cause?: unknown) {
    super(
      'TCC_LEASE_LOST',
      `transaction ${xid}: this process's claim on it lapsed or was taken over, so it stopped driving it`,
      cause === undefined ? undefined : { cause },
    );
    this.xid = xid;
  }
}

/**
 * Another driver holds the claim on a record (its confirm or cancel is running elsewhere), so
 * this one left it alone. Retryable: try again after `retryAfterMs`. Over HTTP a branch answers
 * it with 409 and `Retry-After`; it never counts as a failed attempt.
 */
export class BusyError extends TccError {
  readonly xid: string;
  /** A good time to try again (ms): when the other driver's claim ends at the latest. */
  readonly retryAfterMs: number;
  /** The other driver, if known (`host/pid/…#n`). */
  readonly owner: string | undefined;

  constructor(xid: string, retryAfterMs: number, owner?: string, detail?: string) {
    super(
      'TCC_BUSY',
      detail ??
        `transaction ${xid} is being driven by ${owner ?? 'another process'}; try again in ${retryAfterMs} ms`,
    );
    this.xid = xid;
    this.retryAfterMs = retryAfterMs;
    this.owner = owner;
  }
}

/**
 * The transaction is not in a state that allows this: a participant tried to join after the try
 * phase, or a root's confirm or cancel reached a branch that cannot take it (answered 409).
 */
export class TransactionStateError extends TccError {
  constructor(message: string) {
    super('TCC_INVALID_STATE', message);
  }
}
