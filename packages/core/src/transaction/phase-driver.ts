import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Codec } from '../codec/codec.js';
import { Scope } from '../context/scope.js';
import type { ParticipantRegistry } from '../participants/registry.js';
import { TccError } from '../tcc-error.js';
import type { Participant, RemoteParticipant, TransactionRecord } from './record.js';

export type SettlePhase = 'confirm' | 'cancel';

/** Sends confirm or cancel to a branch in another service (the HTTP transport provides one). */
export interface RemoteInvoker {
  invoke(record: TransactionRecord, participant: RemoteParticipant, phase: SettlePhase): Promise<void>;
}

/** The participant that stopped a phase (`undefined`: the final write of the record), and why. */
export interface PhaseFailure {
  readonly participant: Participant | undefined;
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
    private readonly remote: () => RemoteInvoker | undefined,
  ) {}

  /**
   * `renew` runs before every participant but the first, so a long phase keeps its claim on
   * the record; if it throws, the phase stops there and the error is returned.
   */
  async run(
    record: TransactionRecord,
    phase: SettlePhase,
    renew: () => Promise<void> | undefined,
  ): Promise<{ readonly participant: Participant | undefined; readonly error: unknown } | undefined> {
    const done = phase === 'confirm' ? 'CONFIRMED' : 'CANCELLED';
    const participants = record.participants;
    const n = participants.length;
    let first = true;
    for (let i = 0; i < n; i++) {
      const participant = participants[phase === 'confirm' ? i : n - 1 - i]!;
      if (participant.status === done) continue;
      try {
        if (!first) await renew();
        first = false;
        await this.invoke(record, participant, phase);
      } catch (error) {
        return { participant, error };
      }
      participant.status = done;
    }
    return undefined;
  }

  private invoke(record: TransactionRecord, participant: Participant, phase: SettlePhase): Promise<unknown> {
    if (participant.kind === 'remote') {
      const remote = this.remote();
      if (remote === undefined) {
        throw new TccError(
          'TCC_NO_TRANSPORT',
          `transaction ${record.xid} has remote participant ${participant.endpoint} but no HTTP transport is set up`,
        );
      }
      return remote.invoke(record, participant, phase);
    }
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
export function participantLabel(participant: Participant | undefined): string {
  if (participant === undefined) return 'the record (its final write)';
  return participant.kind === 'local'
    ? `${participant.id} (${participant.target})`
    : `${participant.id} (${participant.endpoint})`;
}
