import { TccError } from '../tcc-error.js';

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
export class DeadlineExceededError extends TccError {
  readonly globalId: string;

  constructor(globalId: string, deadline: number, detail: string) {
    super(
      'TCC_DEADLINE_EXCEEDED',
      `transaction ${globalId} passed its try deadline (${new Date(deadline).toISOString()}): ${detail}`,
    );
    this.globalId = globalId;
  }
}

/**
 * The transaction is committed (CONFIRMING is written) but a confirm threw. The outcome stays
 * "confirmed": recovery retries what is left. `cause` is the participant's error.
 */
export class ConfirmFailedError extends TccError {
  readonly globalId: string;
  readonly participant: string;

  constructor(globalId: string, participant: string, cause: unknown) {
    super(
      'TCC_CONFIRM_FAILED',
      `transaction ${globalId} is committed but the confirm of ${participant} failed` +
        ` (${messageOf(cause)}); recovery will retry it`,
      { cause },
    );
    this.globalId = globalId;
    this.participant = participant;
  }
}

/** A try arrived after its transaction was cancelled or its deadline passed; it was not run. */
export class TransactionHangingError extends TccError {
  readonly globalId: string;

  constructor(globalId: string, detail: string) {
    super('TCC_TRANSACTION_HANGING', `try of transaction ${globalId} refused: ${detail}`);
    this.globalId = globalId;
  }
}

/** A participant tried to join a transaction that already left its try phase. */
export class TransactionStateError extends TccError {
  constructor(message: string) {
    super('TCC_INVALID_STATE', message);
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
