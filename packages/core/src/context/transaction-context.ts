import type { TransactionType } from '../storage/record.js';

/** What the code in scope is running: a try, or a confirm or cancel driven by the SDK. */
export type TransactionPhase = 'try' | 'confirm' | 'cancel';

/**
 * The transaction in scope, as returned by `tcc.current()`. Inside a try, compensable calls
 * join it; inside a confirm or cancel they do not (the outcome is already decided).
 */
export interface TransactionContext {
  readonly globalId: string;
  /** Xid of the record this process keeps: the globalId for a ROOT, its own for a BRANCH. */
  readonly xid: string;
  readonly domain: string;
  readonly rootDomain: string;
  readonly type: TransactionType;
  /** Try deadline, in milliseconds since the epoch. */
  readonly deadline: number;
  readonly phase: TransactionPhase;
  /** The participant whose method is running, or `undefined` in the body of the root itself. */
  readonly participantId: string | undefined;
}
