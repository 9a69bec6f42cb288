import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Codec } from '../codec/codec.js';
import type { ParticipantRegistry } from '../participants/registry.js';
import type {
  LocalParticipant,
  ParticipantRecord,
  RemoteParticipant,
  TransactionRecord,
} from '../storage/record.js';
import type { Claim } from './claims.js';
import { BusyError } from './errors.js';
import { Scope } from './scope.js';
import { sleep } from './waits.js';

/**
 * Times a busy branch is asked before the phase stops (backoff 50 ms, doubling: ~1.5 s in all);
 * the other driver finishes it, or recovery comes back later (a busy branch is never counted).
 */
const BUSY_ATTEMPTS = 6;
const BUSY_BACKOFF_MS = 50;

export type SettlePhase = 'confirm' | 'cancel';

/** Sends confirm or cancel to a branch in another service (the HTTP transport provides one). */
export interface RemoteInvoker {
  invoke(record: TransactionRecord, participant: RemoteParticipant, phase: SettlePhase): Promise<void>;
}

/** The participant that stopped a phase (`undefined`: the final write of the record), and why. */
export interface PhaseFailure {
  readonly participant: ParticipantRecord | undefined;
  readonly error: unknown;
  /** Whether the failure was written to the record (progress, `lastError`, parking). */
  readonly recorded: boolean;
}

/**
 * Runs confirm (in enlistment order) or cancel (in reverse order) on every participant of a
 * record that is not yet done, marking each done in the working copy. It stops at the first
 * failure so that the caller can persist exactly which participants are finished.
 */
export class PhaseDriver {
  constructor(
    private readonly registry: ParticipantRegistry,
    private readonly codec: Codec,
    private readonly als: AsyncLocalStorage<Scope>,
    private readonly remote: RemoteInvoker,
  ) {}

  /**
   * Runs the phase while `claim` holds: a driver whose claim was lost or lapsed stops before the
   * next participant (the claim is renewed on a timer meanwhile, however long one participant
   * takes). A remote branch that answers busy (another driver of its own is at work) is asked
   * again after a backoff; if it stays busy the phase stops with its `BusyError`.
   */
  async run(
    claim: Claim,
    phase: SettlePhase,
  ): Promise<{ readonly participant: ParticipantRecord | undefined; readonly error: unknown } | undefined> {
    const record = claim.record;
    const done = phase === 'confirm' ? 'CONFIRMED' : 'CANCELLED';
    const participants = record.participants;
    const n = participants.length;
    for (let i = 0; i < n; i++) {
      const participant = participants[phase === 'confirm' ? i : n - 1 - i]!;
      if (participant.status === done) continue;
      if (!claim.held) return { participant, error: claim.lost() };
      try {
        await (participant.kind === 'remote'
          ? this.invokeRemote(claim, participant, phase)
          : this.invokeLocal(record, participant, phase));
      } catch (error) {
        return { participant, error };
      }
      participant.status = done;
    }
    return undefined;
  }

  private async invokeRemote(
    claim: Claim,
    participant: RemoteParticipant,
    phase: SettlePhase,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.remote.invoke(claim.record, participant, phase);
      } catch (error) {
        if (!(error instanceof BusyError) || attempt >= BUSY_ATTEMPTS || !claim.held) throw error;
        await sleep(Math.min(error.retryAfterMs, BUSY_BACKOFF_MS * 2 ** (attempt - 1)));
      }
    }
  }

  private invokeLocal(
    record: TransactionRecord,
    participant: LocalParticipant,
    phase: SettlePhase,
  ): Promise<unknown> {
    const action = this.registry.require(participant.target, `${phase} of transaction ${record.xid}`);
    const args = this.codec.decode(participant.args);
    const scope = new Scope(
      record.globalId,
      record.xid,
      record.domain,
      record.rootDomain,
      record.type,
      record.deadline,
      phase,
      participant.id,
      undefined,
    );
    // A synchronous throw lands in `run`'s try block, like a rejection.
    return this.als.run(scope, action[phase], ...args) as Promise<unknown>;
  }
}

/** Names a participant for messages and `lastError`. */
export function participantLabel(participant: ParticipantRecord | undefined): string {
  if (participant === undefined) return 'the record (its final write)';
  return participant.kind === 'local'
    ? `${participant.id} (${participant.target})`
    : `${participant.id} (${participant.endpoint})`;
}
