/**
 * Base class of every error the SDK throws on purpose. `code` is stable across versions and
 * is what callers should match on; the message is for people and may change.
 */
export class TccError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
