import { TccError } from '@tcc/core';

/**
 * The database's schema version is not the one this code runs on: missing or older (call
 * `migrate()`), or newer (a later release of `@tcc/storage-sql` migrated it; upgrade).
 * Its `code` is `TCC_SCHEMA_VERSION`, as in `@tcc/storage-redis`: no retry can fix it, so it is
 * not a `StorageError`.
 */
export class SchemaVersionError extends TccError {
  /** Version found in the database, `undefined` when it was never migrated. */
  readonly found: number | undefined;
  /** The version this code knows (`TCC_SCHEMA_VERSION`). */
  readonly expected: number;

  constructor(message: string, found: number | undefined, expected: number) {
    super('TCC_SCHEMA_VERSION', message);
    this.found = found;
    this.expected = expected;
  }
}

/**
 * A local transaction ended in ROLLBACK although its callback returned normally: a statement
 * inside it failed and the callback caught the error, which aborts the whole transaction in
 * PostgreSQL. Nothing of it was written (no fence row, no business change). Let such errors
 * propagate, or use a `SAVEPOINT` around a statement that is allowed to fail.
 */
export class RolledBackError extends TccError {
  constructor(options?: ErrorOptions) {
    super(
      'TCC_ROLLED_BACK',
      'the local transaction was rolled back instead of committed: a statement in it failed and ' +
        'its error was caught; nothing of it was written (let the error propagate, or use a SAVEPOINT)',
      options,
    );
  }
}
