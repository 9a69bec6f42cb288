import { TccError } from '../base/errors.js';

/**
 * A try's argument that the codec could not restore faithfully in confirm or cancel.
 *
 * Thrown by `encode`, so the transaction can refuse the try before anything is written:
 * finding out at recovery time, possibly in another process, would leave a transaction that
 * can be neither confirmed nor cancelled. `path` locates the value (see {@link JsonCodec} for the
 * notation) so the caller knows which field to change.
 */
export class UnserializableArgumentError extends TccError {
  /** Where the value sits among the try's arguments, e.g. `args[0].customer.callback`. */
  readonly path: string;

  constructor(path: string, found: string) {
    super('TCC_UNSERIALIZABLE_ARGUMENT', `cannot encode ${path}: ${found}`);
    this.path = path;
  }
}

/**
 * Stored arguments that this codec cannot turn back into values: the text was not written by a
 * compatible codec, was damaged, or names a class this process did not register.
 */
export class UndecodableArgumentError extends TccError {
  /** Where decoding stopped; `args` when the text as a whole is unreadable. */
  readonly path: string;

  constructor(path: string, problem: string, options?: ErrorOptions) {
    super('TCC_UNDECODABLE_ARGUMENT', `cannot decode ${path}: ${problem}`, options);
    this.path = path;
  }
}
