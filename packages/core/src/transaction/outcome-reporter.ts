import type { Clock } from '../base/clock.js';
import { TccError } from '../base/errors.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';

/** What a record decided for one of its branches, as far as its log tells. */
export type BranchOutcome = 'confirm' | 'cancel' | 'pending';

/** The answer to a branch's question about its outcome (a `.tcc` query). */
export interface OutcomeAnswer {
  readonly outcome: BranchOutcome;
  readonly detail: string;
}

/** A `.tcc` query: branch `branch` asks the record `xid` of domain `domain` what it decided. */
export interface OutcomeQuery {
  readonly globalId: string;
  /** The record that enlisted the branch (a root's xid is its globalId). */
  readonly xid: string;
  /** The branch asking. */
  readonly branch: string;
  /** The domain the branch believes it asks: a service of another domain refuses to answer. */
  readonly domain: string;
}

/** A query put to the wrong service: it must not answer for another domain's records (HTTP 421). */
export class WrongDomainError extends TccError {
  constructor(message: string) {
    super('TCC_WRONG_DOMAIN', message);
  }
}

/**
 * Answers a branch that tried and heard nothing from the record that enlisted it (its root, or
 * a parent branch): the outcome its log holds. "No record" means cancel: a record is kept until
 * every branch acknowledged its confirm, and a branch exists only if its parent wrote it to its
 * log before sending the try, so a missing record never decided confirm (a lost log, a parent
 * that never existed, a replayed or forged try). A parent still trying past its deadline is
 * cancelled here and then, rather than left for its own recovery's next pass.
 */
export class OutcomeReporter {
  constructor(
    private readonly domain: string,
    private readonly storage: TransactionStorage,
    private readonly clock: Clock,
    private readonly recover: (xid: string) => Promise<unknown>,
  ) {}

  async answer(query: OutcomeQuery): Promise<OutcomeAnswer> {
    if (query.domain !== this.domain) {
      throw new WrongDomainError(
        `this service is domain ${this.domain}, not ${query.domain}: it cannot answer for that domain's records`,
      );
    }
    let record = await this.storage.get(query.xid);
    if (record?.status === 'TRYING' && record.domain === this.domain && this.clock.now() > record.deadline) {
      await this.recover(query.xid).catch(() => undefined);
      record = await this.storage.get(query.xid);
    }
    const name = `${query.xid} of transaction ${query.globalId}`;
    if (record === undefined || record.globalId !== query.globalId || record.domain !== this.domain) {
      return { outcome: 'cancel', detail: `${this.domain} has no record ${name}: it never decided confirm` };
    }
    const enlisted = record.participants.some((p) => p.kind === 'remote' && p.xid === query.branch);
    if (!enlisted) {
      return { outcome: 'cancel', detail: `${name} never enlisted branch ${query.branch}` };
    }
    switch (record.status) {
      case 'CONFIRMING':
      case 'CONFIRMED':
        return { outcome: 'confirm', detail: `${name} is ${record.status}` };
      case 'CANCELLING':
      case 'CANCELLED':
      case 'TRY_FAILED':
        return { outcome: 'cancel', detail: `${name} is ${record.status}` };
      default:
        return { outcome: 'pending', detail: `${name} is ${record.status}: not decided yet` };
    }
  }
}
