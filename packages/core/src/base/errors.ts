import type { TccCode } from './codes.js';

/**
 * Base class of every error the SDK throws on purpose. `code` is stable across versions and
 * is what callers should match on (with `hasCode`, which also holds when two copies of a
 * tcc package meet); the message is for people and may change.
 */
export class TccError extends Error {
  readonly code: TccCode;

  constructor(code: TccCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An option given to the SDK has a value it cannot work with; the message names it. */
export class InvalidOptionError extends TccError {
  constructor(message: string) {
    super('TCC_INVALID_OPTION', message);
  }
}
