import { Scope } from '../context/scope.js';
import type { ResolvedTransactionOptions } from './options.js';
import type { Participant, TransactionRecord } from './record.js';

const noop = () => {};

/**
 * A root in its try phase, as seen by the process that began it. The record is created lazily
 * with the first participant: a transaction that enlists nobody writes nothing.
 */
export class ActiveTransaction {
  /** The persisted record, once the first participant is enlisted. */
  record: TransactionRecord | undefined;
  readonly participants: Participant[] = [];
  /** `trying` until the body returns; after that no participant may join. */
  state: 'trying' | 'settling' = 'trying';
  /** The first try that failed. It dooms the transaction even if its caller caught the error. */
  tryFailure: { readonly error: unknown } | undefined;
  readonly scope: Scope;
  #writes: Promise<void> = Promise.resolve();

  constructor(
    readonly globalId: string,
    readonly domain: string,
    readonly createdAt: number,
    readonly deadline: number,
    readonly options: ResolvedTransactionOptions,
  ) {
    this.scope = new Scope(globalId, globalId, domain, domain, 'ROOT', deadline, 'try', undefined, this);
  }

  /**
   * Runs writes of this record one after another: participants called concurrently
   * (`Promise.all`) would otherwise race each other's compare-and-set.
   */
  serialize<T>(write: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(write);
    this.#writes = run.then(noop, noop);
    return run;
  }

  /** Resolves once every queued write has finished. */
  settled(): Promise<void> {
    return this.#writes;
  }

  newRecord(now: number): TransactionRecord {
    return {
      globalId: this.globalId,
      xid: this.globalId,
      domain: this.domain,
      rootDomain: this.domain,
      type: 'ROOT',
      status: 'TRYING',
      participants: this.participants,
      attachments: {},
      retries: 0,
      version: 1,
      createdAt: this.createdAt,
      updatedAt: now,
      deadline: this.deadline,
    };
  }
}
