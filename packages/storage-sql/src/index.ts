/**
 * PostgreSQL and PGlite storage for @tcc/core (DESIGN.md §6), with the SQL barrier (§4).
 */

// Defined in core (every store reports a schema mismatch alike); exported here as before.
export { SchemaVersionError } from '@tcc/core/storage';
export { type BarrierContext, type BarrierOptions, barrier, migrateBarrier } from './barrier.js';
export { type BarrierQueryResult, barrierQuery } from './barrier-query.js';
export type {
  PGliteLike,
  PgClientLike,
  PgPoolClientLike,
  PgPoolLike,
  SqlClientInput,
  SqlExecutor,
  SqlRow,
} from './client.js';
export { ConnectionLostError, RolledBackError, StoreLockedError } from './errors.js';
export { MIGRATIONS, type Migration, type MigrationResult, TCC_SCHEMA_VERSION } from './migrations.js';
export type { SqlNames } from './names.js';
export { openPGlite } from './pglite/open-pglite.js';
export { SqlStorage, type SqlStorageOptions } from './sql-storage.js';
