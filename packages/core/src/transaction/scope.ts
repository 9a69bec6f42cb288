import type { TransactionContext, TransactionPhase } from '../context/transaction-context.js';
import type { TransactionType } from '../storage/record.js';
import type { ActiveTransaction } from './active-transaction.js';

/**
 * The value kept in AsyncLocalStorage: the public {@link TransactionContext} plus, during a
 * try, the transaction that compensable calls join. Scopes are immutable: entering a
 * participant makes a new one, so concurrent participants of one root never see each other.
 */
export class Scope implements TransactionContext {
  constructor(
    readonly globalId: string,
    readonly xid: string,
    readonly domain: string,
    readonly rootDomain: string,
    readonly type: TransactionType,
    readonly deadline: number,
    readonly phase: TransactionPhase,
    readonly participantId: string | undefined,
    /** @internal The transaction in its try phase, which compensable calls may join. */
    readonly joinable: ActiveTransaction | undefined,
  ) {}

  /** The same transaction, inside one participant's method. */
  enter(participantId: string, phase: TransactionPhase): Scope {
    return new Scope(
      this.globalId,
      this.xid,
      this.domain,
      this.rootDomain,
      this.type,
      this.deadline,
      phase,
      participantId,
      phase === 'try' ? this.joinable : undefined,
    );
  }
}
