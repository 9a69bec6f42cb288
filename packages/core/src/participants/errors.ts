import { TccError } from '../base/errors.js';

/** A compensable action, or an instance with compensable methods, is not registered here. */
export class NotRegisteredError extends TccError {
  constructor(message: string) {
    super('TCC_NOT_REGISTERED', message);
  }
}

/** A participant or action name is already taken in this `Tcc`. */
export class DuplicateParticipantError extends TccError {
  readonly participant: string;

  constructor(participant: string, detail: string) {
    super('TCC_DUPLICATE_PARTICIPANT', `participant name ${JSON.stringify(participant)} ${detail}`);
    this.participant = participant;
  }
}

/** A registered class or function set does not describe a usable try/confirm/cancel triple. */
export class InvalidParticipantError extends TccError {
  constructor(message: string) {
    super('TCC_INVALID_PARTICIPANT', message);
  }
}
