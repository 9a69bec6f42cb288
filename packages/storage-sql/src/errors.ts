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
