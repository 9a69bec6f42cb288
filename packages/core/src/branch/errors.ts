import { messageOf } from '../base/checks.js';
import { TccError } from '../base/errors.js';

/** A confirm or cancel named a branch this service does not have (for that transaction). */
export class BranchNotFoundError extends TccError {
  readonly xid: string;

  constructor(domain: string, globalId: string, xid: string) {
    super('TCC_BRANCH_NOT_FOUND', `no branch ${xid} of transaction ${globalId} in ${domain}`);
    this.xid = xid;
  }
}

/**
 * A confirm or cancel of a branch failed part way (one of its participants threw, or the store
 * failed): the branch keeps its progress and the root sends the command again. `cause` is the
 * participant's or the store's error.
 */
export class BranchFailedError extends TccError {
  constructor(detail: string, cause: unknown) {
    super('TCC_BRANCH_FAILED', `${detail}: ${messageOf(cause)}`, { cause });
  }
}

/** The same try came again while the first is still trying: it is not run a second time. */
export class TryInProgressError extends TccError {
  constructor() {
    super('TCC_TRY_IN_PROGRESS', 'this try is already running');
  }
}

/** Refuses a participant of a try sent again: its first answer is replayed instead. */
export class DuplicateTryError extends TccError {
  constructor(globalId: string, xid: string) {
    super('TCC_DUPLICATE_TRY', `try of transaction ${globalId}: branch ${xid} has run this try already`);
  }
}
