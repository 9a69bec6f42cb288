import type { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { messageOf } from '../base/checks.js';
import type { Clock } from '../base/clock.js';
import { hasCode } from '../base/codes.js';
import { InvalidOptionError } from '../base/errors.js';
import { TurnBatcher } from '../base/turn-batcher.js';
import type { Codec } from '../codec/codec.js';
import type { TransactionContext } from '../context/transaction-context.js';
import type { CompensableAction } from '../participants/compensable-action.js';
import {
  DEFAULT_TRANSACTION_OPTIONS,
  type ResolvedTransactionOptions,
} from '../participants/transaction-options.js';
import { DuplicateTransactionError } from '../storage/errors.js';
import type {
  LocalParticipant,
  ParticipantRecord,
  RemoteParticipant,
  TransactionRecord,
} from '../storage/record.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { BranchOrigin } from './active-transaction.js';
import { ActiveTransaction } from './active-transaction.js';
import type { Claim, Claims } from './claims.js';
import {
  BusyError,
  CommitFailedError,
  ConfirmFailedError,
  DeadlineExceededError,
  LeaseLostError,
  OutcomeUnknownError,
  TransactionRequiredError,
  TransactionStateError,
} from './errors.js';
import { type PhaseDriver, type PhaseFailure, participantLabel, type SettlePhase } from './phase-driver.js';
import type { RecordLog } from './record-log.js';
import type { Scope } from './scope.js';

export interface ManagerConfig {
  readonly domain: string;
  readonly codec: Codec;
  readonly clock: Clock;
  readonly log: RecordLog;
  readonly driver: PhaseDriver;
  readonly telemetry: Telemetry;
  readonly als: AsyncLocalStorage<Scope>;
  /** Default try deadline of roots, in ms. */
  readonly timeoutMs: number;
  /** Every driver of a confirm or cancel holds a claim on its record, taken and renewed here. */
  readonly claims: Claims;
  /** How long a root begun with an id is kept once finished, to answer a retry with that id. */
  readonly idKeepMs: number;
  /** Base URL where this service serves `.tcc` (`http.url`), told to the branches it enlists. */
  readonly url: string | undefined;
}

/**
 * A remote branch enlisted (and persisted) in the transaction in scope, before its try request
 * is sent. `finish` must be called once the request has ended, with its error if it failed.
 */
export interface RemoteEnlistment {
  /** What the callee needs to open its branch: the fields of the context header. */
  readonly origin: BranchOrigin;
  finish(error?: unknown): void;
}

/**
 * Begins roots, enlists participants and settles (confirms or cancels) what the process began.
 * Writes on the happy path of a root with k participants: k enlist writes (the first creates
 * the record), CONFIRMING (the commit point) and the final remove: k + 2.
 */
export class TransactionManager {
  readonly #background = new Set<Promise<unknown>>();

  constructor(private readonly config: ManagerConfig) {}

  current(): TransactionContext | undefined {
    return this.config.als.getStore();
  }

  /** Whether a call made now would join a transaction's try (and so enlist). */
  inTry(): boolean {
    return this.config.als.getStore()?.joinable !== undefined;
  }

  /** Calls a compensable action according to its propagation. */
  call(action: CompensableAction, args: unknown[]): Promise<unknown> {
    const joinable = this.config.als.getStore()?.joinable;
    switch (action.options.propagation) {
      case 'REQUIRED':
        return joinable
          ? this.join(joinable, action, args)
          : this.root(action.options, (tx) => this.join(tx, action, args));
      case 'REQUIRES_NEW':
        return this.root(action.options, (tx) => this.join(tx, action, args));
      case 'MANDATORY':
        if (!joinable) return Promise.reject(new TransactionRequiredError(action.name));
        return this.join(joinable, action, args);
      case 'SUPPORTS':
        return joinable ? this.join(joinable, action, args) : call(action.try, args);
    }
  }

  /** `tcc.transaction`: the body runs as the try phase of a root (or joins, per propagation). */
  transaction<R>(body: () => Promise<R> | R, options: ResolvedTransactionOptions): Promise<R> {
    const joinable = this.config.als.getStore()?.joinable;
    switch (options.propagation) {
      case 'REQUIRED':
        if (joinable && options.id !== undefined) {
          return Promise.reject(
            new InvalidOptionError(
              `tcc.transaction: id ${JSON.stringify(options.id)} names a new root, but this call joins transaction ` +
                `${joinable.globalId} (propagation REQUIRED); use REQUIRES_NEW for a root of its own`,
            ),
          );
        }
        return joinable ? call(body, []) : this.root(options, body);
      case 'REQUIRES_NEW':
        return this.root(options, body);
      case 'MANDATORY':
        if (!joinable) return Promise.reject(new TransactionRequiredError('tcc.transaction'));
        return call(body, []);
      case 'SUPPORTS':
        return call(body, []);
    }
  }

  /** Resolves when confirms and cancels running in the background have finished. */
  async drain(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /**
   * Confirms or cancels every participant not yet done, then ends the record, as the driver
   * holding `claim` (see `Claims`). On failure the progress and the error are written, the
   * claim released, and the failure returned (the record stays for recovery);
   * `beforeFailureWrite` lets recovery count or park the attempt in that same write. A driver
   * whose claim was lost writes nothing. `startedAt` is given by the process that began the
   * transaction, which counts its outcome.
   */
  async settle(
    claim: Claim,
    phase: SettlePhase,
    startedAt?: number,
    beforeFailureWrite?: (record: TransactionRecord, error: unknown) => void,
  ): Promise<PhaseFailure | undefined> {
    const { telemetry, driver, log, clock } = this.config;
    const record = claim.record;
    const span = telemetry.start(phase === 'confirm' ? 'tcc.confirm' : 'tcc.cancel', record);
    const stopped = await telemetry.within(span, () => driver.run(claim, phase));
    const renewing = claim.stop();
    if (renewing !== undefined) await renewing;
    let failure: PhaseFailure | undefined;
    if (stopped === undefined) {
      const status = record.status;
      try {
        await log.finish(record, phase === 'confirm' ? 'CONFIRMED' : 'CANCELLED');
      } catch (error) {
        // Every participant is done. Lost to another writer: it finishes the record. Store
        // down: recovery runs the phase again, which is why confirm and cancel are idempotent.
        record.status = status;
        // A final write the replicas did not acknowledge is on the primary; were it lost, the
        // acknowledged commit point before it has recovery run the (idempotent) phase again.
        // (A store's errors are told apart by code: it may be built on another copy of core.)
        if (!hasCode(error, 'TCC_OPTIMISTIC_LOCK') && !hasCode(error, 'TCC_REPLICATION_TIMEOUT'))
          failure = { participant: undefined, error, recorded: false };
      }
    } else if (stopped.error instanceof LeaseLostError) {
      failure = { ...stopped, recorded: false };
    } else {
      record.lastError = `${phase} of ${participantLabel(stopped.participant)} failed: ${messageOf(stopped.error)}`;
      // Released with the failure: the next driver need not wait for the claim to lapse.
      delete record.claim;
      beforeFailureWrite?.(record, stopped.error);
      let recorded = true;
      try {
        await log.save(record);
      } catch {
        // Lost to another writer or the store is down: the stored record still says what is left.
        recorded = false;
      }
      failure = { ...stopped, recorded };
    }
    telemetry.end(span, record, failure?.error);
    if (startedAt !== undefined) {
      const outcome = failure !== undefined ? 'pending' : phase === 'confirm' ? 'confirmed' : 'cancelled';
      telemetry.transactionEnded(outcome, startedAt, clock.now());
    }
    return failure;
  }

  /**
   * Enlists a remote branch reached at `endpoint` in the transaction in scope, writing it to
   * the log before the caller sends the try request, so that a crash during the request is
   * cancelled (an empty rollback if the request never left). `undefined` outside a try.
   */
  async enlistRemote(endpoint: string, calleeDomain?: string): Promise<RemoteEnlistment | undefined> {
    const tx = this.config.als.getStore()?.joinable;
    if (tx === undefined) return undefined;
    if (tx.state !== 'trying') {
      throw new TransactionStateError(
        `a call to ${endpoint} cannot join transaction ${tx.globalId}: its try phase has ended` +
          ' (await every remote call inside the transaction body)',
      );
    }
    if (this.config.clock.now() > tx.deadline) {
      throw new DeadlineExceededError(tx.globalId, tx.deadline, `${endpoint} was not called`);
    }
    const participant: RemoteParticipant = {
      id: tx.nextParticipantId(),
      kind: 'remote',
      endpoint,
      xid: randomUUID(),
      status: 'TRYING',
    };
    if (calleeDomain !== undefined) participant.domain = calleeDomain;
    tx.started();
    try {
      await this.enlistTogether(tx, participant);
    } catch (error) {
      tx.tryFailure ??= { error };
      tx.finished();
      throw error;
    }
    let finished = false;
    const { domain, url } = this.config;
    return {
      origin: {
        globalId: tx.globalId,
        xid: participant.xid,
        rootDomain: tx.rootDomain,
        deadline: tx.deadline,
        parent: url === undefined ? { domain, xid: tx.xid } : { domain, xid: tx.xid, endpoint: url },
      },
      finish: (error?: unknown) => {
        if (finished) return;
        finished = true;
        // Kept in memory only: cancel goes to the branch either way (it may have done part of
        // its try), and confirm only happens when every try succeeded.
        if (error === undefined) participant.status = 'TRIED';
        else tx.tryFailure ??= { error };
        tx.finished();
      },
    };
  }

  /**
   * Opens the try phase of a branch received from another service. Its record is created with
   * its first participant, like a root's (the caller handles a create that finds one there).
   */
  openBranch(origin: BranchOrigin): ActiveTransaction {
    return new ActiveTransaction(
      origin.globalId,
      this.config.domain,
      this.config.clock.now(),
      origin.deadline,
      DEFAULT_BRANCH_OPTIONS,
      origin,
    );
  }

  /** Runs `fn` inside the try scope of a branch, so compensable calls join it. */
  withinBranch<T>(tx: ActiveTransaction, fn: () => T): T {
    return this.config.als.run(tx.scope, fn);
  }

  private begin(options: ResolvedTransactionOptions): ActiveTransaction {
    const now = this.config.clock.now();
    const tx = new ActiveTransaction(
      options.id ?? randomUUID(),
      this.config.domain,
      now,
      now + (options.timeoutMs ?? this.config.timeoutMs),
      options,
    );
    if (options.id !== undefined) tx.keepFor = this.config.idKeepMs;
    return tx;
  }

  /**
   * A root begun with an id writes its record before the body runs: the create is what tells a
   * retry with the same id (running, or finished and kept) from a first call, so the body of a
   * retry never runs. Throws `DuplicateTransactionError` carrying what the log has of the first.
   */
  private async reserve(tx: ActiveTransaction): Promise<void> {
    const { log, clock } = this.config;
    const record = tx.newRecord(clock.now());
    const claim = this.#claimTry(tx, record);
    try {
      await log.create(record);
    } catch (error) {
      if (!hasCode(error, 'TCC_DUPLICATE_TRANSACTION')) throw error;
      const first = await log.storage.get(tx.xid).catch(() => undefined);
      throw new DuplicateTransactionError(tx.xid, first?.status);
    }
    tx.record = record;
    tx.claim = claim;
    claim.written();
  }

  /**
   * The claim a try holds on its record from the create on (see `ActiveTransaction.claim`). A new
   * record has no holder, so this never throws.
   */
  #claimTry(tx: ActiveTransaction, record: TransactionRecord): Claim {
    return this.config.claims.claimFor(record, tx);
  }

  private async root<R>(
    options: ResolvedTransactionOptions,
    body: (tx: ActiveTransaction) => Promise<R> | R,
  ): Promise<R> {
    const { als, telemetry } = this.config;
    const tx = this.begin(options);
    const span = telemetry.start('tcc.try', tx.scope);
    let result: R;
    if (options.id !== undefined) {
      try {
        await this.reserve(tx);
      } catch (error) {
        telemetry.end(span, undefined, error);
        throw error;
      }
    }
    try {
      result = await telemetry.within(span, () => als.run(tx.scope, call, body, [tx]));
      // A try the body did not await still belongs to this transaction: wait for it.
      const running = tx.quiet();
      if (running !== undefined) await running;
      if (tx.tryFailure !== undefined) throw tx.tryFailure.error;
    } catch (error) {
      telemetry.end(span, tx.record, error);
      await this.abort(tx, error);
      throw error;
    }
    telemetry.end(span, tx.record);
    await this.commit(tx);
    return result;
  }

  private async join(tx: ActiveTransaction, action: CompensableAction, args: unknown[]): Promise<unknown> {
    if (tx.state !== 'trying') {
      throw new TransactionStateError(
        `${action.name} cannot join transaction ${tx.globalId}: its try phase has ended` +
          ' (await every compensable call inside the transaction body)',
      );
    }
    if (this.config.clock.now() > tx.deadline) {
      throw new DeadlineExceededError(tx.globalId, tx.deadline, `${action.name} was not tried`);
    }
    // Encoding first: arguments that cannot be stored are refused before anything is written.
    const participant: LocalParticipant = {
      id: tx.nextParticipantId(),
      kind: 'local',
      target: action.name,
      confirm: action.confirmName,
      cancel: action.cancelName,
      args: this.config.codec.encode(args),
      status: 'TRYING',
    };
    tx.started();
    try {
      await this.enlist(tx, participant);
      return await this.config.als.run(tx.scope.enter(participant.id, 'try'), call, action.try, args);
    } catch (error) {
      tx.tryFailure ??= { error };
      throw error;
    } finally {
      tx.finished();
    }
  }

  /** Persists the participant before its try runs, so a crash during the try is cancelled. */
  private enlist(tx: ActiveTransaction, participant: ParticipantRecord): Promise<void> {
    return this.write(tx, [participant]);
  }

  /**
   * Like `enlist`, for remote participants: those enlisted at once (`Promise.all` of several
   * calls to other services) share one write. Waiting for the running code's microtasks costs
   * nothing next to the request that follows; local participants, whose tries are often
   * microseconds, are written at once.
   */
  private enlistTogether(tx: ActiveTransaction, participant: ParticipantRecord): Promise<void> {
    tx.enlists ??= new TurnBatcher<ParticipantRecord, void>(
      async (batch) => {
        await this.write(
          tx,
          batch.map((b) => b.item),
        );
        for (const b of batch) b.resolve();
      },
      { after: 'microtasks' },
    );
    return tx.enlists.add(participant);
  }

  /** Writes the record with `participants` added, under the record's write lock. */
  private async write(tx: ActiveTransaction, participants: ParticipantRecord[]): Promise<void> {
    const { log, clock } = this.config;
    if (tx.gate !== undefined) await tx.gate();
    const wait = tx.lock();
    if (wait !== undefined) await wait;
    // Pushed under the lock: the record a store is reading never changes under it.
    tx.participants.push(...participants);
    const creating = tx.record === undefined;
    try {
      if (tx.record === undefined) {
        tx.record = tx.newRecord(clock.now());
        const claim = this.#claimTry(tx, tx.record);
        await log.create(tx.record);
        tx.claim = claim;
        claim.written();
      } else {
        tx.claim?.extend();
        await log.save(tx.record);
      }
    } catch (error) {
      if (creating) tx.record = undefined;
      tx.participants.splice(tx.participants.length - participants.length);
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) throw takenOver(tx, error);
      // A branch's record created at its first enlist: a cancel's tombstone, or the same try
      // sent again, was there first. Either way these participants' tries must not run.
      if (creating && hasCode(error, 'TCC_DUPLICATE_TRANSACTION') && tx.onCreateConflict !== undefined) {
        throw await tx.onCreateConflict();
      }
      throw error;
    } finally {
      tx.unlock();
    }
  }

  private async commit(tx: ActiveTransaction): Promise<void> {
    const { log, clock } = this.config;
    const storage = log.storage;
    tx.state = 'settling';
    const record = tx.record;
    if (record === undefined) return;
    if (clock.now() > tx.deadline) {
      await this.cancel(tx, record);
      throw new DeadlineExceededError(
        tx.globalId,
        tx.deadline,
        'the try finished too late, so it was cancelled',
      );
    }
    // The commit point carries this process's claim: it drives the confirms, and no recovery
    // or operator does while it renews that claim. It takes over from the try's claim.
    await tx.endTry();
    const before = record.version;
    let claim = this.config.claims.claimFor(record);
    record.status = 'CONFIRMING';
    try {
      await log.save(record);
      claim.written();
    } catch (error) {
      if (hasCode(error, 'TCC_REPLICATION_TIMEOUT')) {
        // On the primary but not on enough replicas: confirming could be undone by a failover
        // (whose new primary still says TRYING, so recovery would cancel), and cancelling would
        // contradict the primary. The primary's record is finished by recovery either way.
        throw new OutcomeUnknownError(tx.globalId, error);
      }
      claim.undo();
      record.status = 'TRYING';
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) {
        claim = await this.#redoLostCommitPoint(tx, record, before, error);
      } else {
        // The write may have landed anyway (a timeout after the server applied it). Cancelling
        // is a compare-and-set that tells: it only succeeds if CONFIRMING is not stored.
        const cancelled = await this.cancel(tx, record);
        if (cancelled === 'cancelled') throw new CommitFailedError(tx.globalId, error);
        const stored = await storage.get(record.xid).catch(() => undefined);
        if (stored?.status !== 'CONFIRMING' || stored.claim?.owner !== claim.owner) {
          throw new OutcomeUnknownError(tx.globalId, error);
        }
        // It did land, with this process's claim: this process goes on to confirm, once a write
        // of its own is acknowledged (the one that landed may not have reached the replicas).
        record.status = 'CONFIRMING';
        record.version = stored.version;
        record.updatedAt = stored.updatedAt;
        record.dueAt = stored.dueAt;
        record.claim = stored.claim;
        try {
          await log.save(record);
        } catch (unconfirmed) {
          throw new OutcomeUnknownError(tx.globalId, unconfirmed);
        }
        claim.written();
      }
    }
    if (tx.options.asyncConfirm) {
      this.inBackground(this.settle(claim, 'confirm', tx.createdAt));
      return;
    }
    const failure = await this.settle(claim, 'confirm', tx.createdAt);
    if (failure !== undefined && failure.participant !== undefined) {
      throw new ConfirmFailedError(tx.globalId, participantLabel(failure.participant), failure.error);
    }
  }

  /**
   * The commit point lost its compare-and-set. If the log holds the record just as this process
   * last wrote it (a failover took the commit point away with the primary that had it alone),
   * the commit point is written again there, within the deadline; otherwise another process took
   * the record over.
   */
  async #redoLostCommitPoint(
    tx: ActiveTransaction,
    record: TransactionRecord,
    before: number,
    /** The store's `TCC_OPTIMISTIC_LOCK` error. */
    lost: unknown,
  ): Promise<Claim> {
    const { log, clock } = this.config;
    const stored = await log.storage.get(record.xid).catch(() => undefined);
    if (stored?.status !== 'TRYING' || stored.version !== before || clock.now() > tx.deadline) {
      throw takenOver(tx, lost);
    }
    record.version = stored.version;
    record.updatedAt = stored.updatedAt;
    record.dueAt = stored.dueAt;
    const claim = this.config.claims.claimFor(record);
    record.status = 'CONFIRMING';
    try {
      await log.save(record);
    } catch (error) {
      claim.undo();
      record.status = 'TRYING';
      if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) throw takenOver(tx, error);
      throw new OutcomeUnknownError(tx.globalId, error);
    }
    claim.written();
    return claim;
  }

  /** The try failed: cancel what was enlisted, unless the error asks to leave it to recovery. */
  private async abort(tx: ActiveTransaction, error: unknown): Promise<void> {
    // Cancel only once no try is running, or it could undo a try that has not finished.
    const running = tx.quiet();
    if (running !== undefined) await running;
    tx.state = 'settling';
    const record = tx.record;
    if (record === undefined) return;
    if (tx.options.delayCancelOn.some((errorClass) => error instanceof errorClass)) {
      // Left to recovery: the try's claim lapses instead of being renewed.
      await tx.endTry();
      return;
    }
    await this.cancel(tx, record);
  }

  /**
   * Writes CANCELLING and cancels. `lost`: another writer changed the record first (recovery
   * after the deadline, or a commit point that did land); `unreachable`: the store failed and
   * recovery cancels the record once its deadline has passed.
   */
  private async cancel(
    tx: ActiveTransaction,
    record: TransactionRecord,
  ): Promise<'cancelled' | 'lost' | 'unreachable'> {
    await tx.endTry();
    record.status = 'CANCELLING';
    let claim: Claim;
    try {
      claim = await this.config.claims.take(record);
    } catch (error) {
      record.status = 'TRYING';
      return hasCode(error, 'TCC_OPTIMISTIC_LOCK') || error instanceof BusyError ? 'lost' : 'unreachable';
    }
    const settling = this.settle(claim, 'cancel', tx.createdAt);
    if (tx.options.asyncCancel) this.inBackground(settling);
    else await settling;
    return 'cancelled';
  }

  private inBackground(work: Promise<unknown>): void {
    // Failures are already written to the record for recovery; nothing is left to report here.
    const tracked = work.catch(() => {});
    this.#background.add(tracked);
    void tracked.then(() => this.#background.delete(tracked));
  }
}

/** A branch never begins a root of its own: its options only matter for the calls it joins. */
const DEFAULT_BRANCH_OPTIONS = DEFAULT_TRANSACTION_OPTIONS;

function takenOver(tx: ActiveTransaction, cause: unknown): DeadlineExceededError {
  return new DeadlineExceededError(
    tx.globalId,
    tx.deadline,
    'another process (recovery after the deadline, or an operator) took the record over',
    cause,
  );
}

/**
 * Calls user code so that a synchronous throw and a rejection take the same path. A promise
 * the code returns is passed through as is: no extra promise on the hot path.
 */
function call<A extends unknown[], R>(fn: (...args: A) => R | Promise<R>, args: A): Promise<R> {
  try {
    return Promise.resolve(fn(...args));
  } catch (error) {
    return Promise.reject(error);
  }
}
