import type { CompensableAction } from './compensable-action.js';
import { DuplicateParticipantError, NotRegisteredError } from './errors.js';

/**
 * Actions by name. Participant names (`capital`) and action names (`capital.record`) share one
 * namespace so that a record's `target` can never mean two things.
 */
export class ParticipantRegistry {
  readonly #actions = new Map<string, CompensableAction>();
  readonly #participants = new Set<string>();

  /** Adds every action of one participant, or none of them if a name is taken. */
  add(participant: string, actions: readonly CompensableAction[]): void {
    if (this.#participants.has(participant) || this.#actions.has(participant)) {
      throw new DuplicateParticipantError(participant, 'is already registered in this Tcc');
    }
    for (const action of actions) {
      if (this.#actions.has(action.name) || this.#participants.has(action.name)) {
        throw new DuplicateParticipantError(action.name, 'is already registered in this Tcc');
      }
    }
    this.#participants.add(participant);
    for (const action of actions) this.#actions.set(action.name, action);
  }

  /** The action registered as `name`; `forWhat` says who needs it, in the error if there is none. */
  require(name: string, forWhat: string): CompensableAction {
    const action = this.#actions.get(name);
    if (action === undefined) {
      throw new NotRegisteredError(
        `${forWhat} needs participant ${JSON.stringify(name)}, which is not registered in this process` +
          ' (register the same classes and compensable functions in every process that recovers this domain)',
      );
    }
    return action;
  }
}
