import { SchemaVersionError } from '@tcc/core/storage';
import type { SqlClient, SqlExecutor } from './client.js';
import { sqlState } from './client.js';
import type { SqlNames } from './names.js';

/** One step of the schema. Applied once, in its own transaction, and recorded in `<table>_migrations`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The statements, run in order inside the migration's transaction. */
  up(names: SqlNames): string[];
}

/**
 * Every migration this release knows, oldest first. Append only: a released entry is never
 * changed, a new schema is a new entry (and `TCC_SCHEMA_VERSION` follows its version).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'transaction records, stuck and expiry indexes, barrier fences',
    up: (n) => [
      // The queryable fields are columns; `record` is the whole record as JSON text (text,
      // not jsonb: it round-trips exactly, and a damaged value can be detected and reported).
      // Times are milliseconds since the epoch, as in the record.
      `CREATE TABLE ${n.records} (
        xid text COLLATE "C" PRIMARY KEY,
        global_id text NOT NULL,
        domain text NOT NULL,
        type text NOT NULL,
        status text NOT NULL,
        version integer NOT NULL,
        retries integer NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        deadline bigint NOT NULL,
        parked_at bigint,
        expires_at bigint,
        claimed_until bigint,
        record text NOT NULL
      )`,
      // findStuck and claimStuck: holds only stuck, unparked records, in page order, so a scan
      // never reads finished or parked ones and stops after `limit` rows without a sort.
      `CREATE INDEX ${n.local('stuck')} ON ${n.records} (domain, updated_at, xid)
        WHERE status IN ('TRYING', 'CONFIRMING', 'CANCELLING') AND parked_at IS NULL`,
      // No index for list/count: they are for operators, and the table holds only live
      // transactions and tombstones; every index costs each write (updates are never HOT,
      // updated_at is indexed), about 10% of throughput for one more index on this path.
      // purgeExpired: only tombstones have expires_at.
      `CREATE INDEX ${n.local('expires')} ON ${n.records} (expires_at) WHERE expires_at IS NOT NULL`,
      // IF NOT EXISTS: `migrateBarrier()` may have created it before the log was migrated.
      barrierTable(n, true),
    ],
  },
  {
    version: 2,
    name: 'records due by due_at; every unfinished status in the stuck index; claimed_until dropped',
    up: (n) => [
      // Recovery finds a record when it is due (a try's deadline, the end of a driver's claim),
      // which the runtime writes as `dueAt`; records written before it get their updated_at.
      `ALTER TABLE ${n.records} ADD COLUMN due_at bigint`,
      `UPDATE ${n.records} SET due_at = updated_at,
        record = jsonb_set(record::jsonb, '{dueAt}', to_jsonb(updated_at))::text`,
      `ALTER TABLE ${n.records} ALTER COLUMN due_at SET NOT NULL`,
      `DROP INDEX ${n.quotedSchema}.${n.local('stuck')}`,
      // Branches that tried (TRIED, TRY_FAILED) are recovered too: past their deadline they ask
      // their parent for the outcome, or cancel. Keep the list as the store's query has it.
      `CREATE INDEX ${n.local('stuck')} ON ${n.records} (domain, due_at, xid)
        WHERE status IN ('TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING') AND parked_at IS NULL`,
      // The claim of a driver is part of the record (its JSON) and is written by the same
      // compare-and-set as the rest; the advisory column of claimStuck is gone with it.
      `ALTER TABLE ${n.records} DROP COLUMN claimed_until`,
    ],
  },
];

/** The schema version this release reads and writes. */
export const TCC_SCHEMA_VERSION = 2;

const LOCK_NAMESPACE = 0x7cc; // pg_advisory_xact_lock(int, int): (tcc, hash of the schema)

export function barrierTable(n: SqlNames, ifNotExists = false): string {
  return `CREATE TABLE ${ifNotExists ? 'IF NOT EXISTS ' : ''}${n.barrier} (
    global_id text COLLATE "C" NOT NULL,
    branch_id text COLLATE "C" NOT NULL,
    phase text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (global_id, branch_id, phase)
  )`;
}

/** What `migrate()` did. */
export interface MigrationResult {
  /** Schema version before (0: never migrated). */
  from: number;
  /** Schema version now (`TCC_SCHEMA_VERSION`). */
  to: number;
  /** Versions applied by this call; empty when the database was up to date. */
  applied: number[];
}

/**
 * Takes the schema's migration lock for the rest of `tx` and creates the schema if missing.
 * The lock is per schema, not per table: stores with different tables in one new schema
 * would otherwise race to create it.
 */
export async function lockSchema(tx: SqlExecutor, names: SqlNames): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_NAMESPACE, names.schema]);
  const schemas = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [names.schema]);
  if (schemas.length === 0) await tx.query(`CREATE SCHEMA ${names.quotedSchema}`);
}

/**
 * Brings the database to `TCC_SCHEMA_VERSION`. Each pending migration runs in its own
 * transaction that first takes the schema's advisory lock (`lockSchema`), so processes
 * migrating at once queue up and each migration is applied exactly once.
 */
export async function runMigrations(client: SqlClient, names: SqlNames): Promise<MigrationResult> {
  let from: number | undefined;
  const applied: number[] = [];
  for (;;) {
    const step = await client.transaction(async (tx) => {
      await lockSchema(tx, names);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS ${names.migrations} (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`,
      );
      const current = await currentVersion(tx, names);
      from ??= current;
      if (current > TCC_SCHEMA_VERSION) throw newerError(names, current);
      const next = MIGRATIONS.find((m) => m.version === current + 1);
      if (next === undefined) return undefined;
      for (const statement of next.up(names)) await tx.query(statement);
      await tx.query(`INSERT INTO ${names.migrations} (version, name) VALUES ($1, $2)`, [
        next.version,
        next.name,
      ]);
      return next.version;
    });
    if (step === undefined) break;
    applied.push(step);
  }
  return { from: from ?? 0, to: TCC_SCHEMA_VERSION, applied };
}

async function currentVersion(tx: SqlExecutor, names: SqlNames): Promise<number> {
  const [row] = await tx.query<{ version: unknown }>(
    `SELECT max(version) AS version FROM ${names.migrations}`,
  );
  return row?.version === null || row?.version === undefined ? 0 : Number(row.version);
}

/**
 * Refuses a database this code cannot run on: never migrated, older, or newer than
 * `TCC_SCHEMA_VERSION`. Other errors (connection) are thrown as they are.
 */
export async function checkSchemaVersion(client: SqlClient, names: SqlNames): Promise<void> {
  let version: number;
  try {
    version = await currentVersion(client, names);
  } catch (error) {
    const state = sqlState(error);
    // 42P01: no such table; 3F000: no such schema.
    if (state === '42P01' || state === '3F000') version = 0;
    else throw error;
  }
  if (version === TCC_SCHEMA_VERSION) return;
  if (version === 0) {
    throw new SchemaVersionError(
      `SqlStorage: ${names.records} has no schema yet (${names.migrations} is missing or empty): ` +
        'call `await storage.migrate()` once before using the store',
      { key: names.migrations, found: undefined, expected: TCC_SCHEMA_VERSION },
    );
  }
  if (version < TCC_SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `SqlStorage: ${names.records} is at schema version ${version}, this code needs ` +
        `${TCC_SCHEMA_VERSION}: call \`await storage.migrate()\``,
      { key: names.migrations, found: version, expected: TCC_SCHEMA_VERSION },
    );
  }
  throw newerError(names, version);
}

function newerError(names: SqlNames, version: number): SchemaVersionError {
  return new SchemaVersionError(
    `SqlStorage: ${names.records} is at schema version ${version}, newer than the ${TCC_SCHEMA_VERSION} ` +
      'this @tcc/storage-sql knows (TCC_SCHEMA_VERSION); a later release migrated it: upgrade ' +
      '@tcc/storage-sql in this service, do not run it against that database',
    { key: names.migrations, found: version, expected: TCC_SCHEMA_VERSION },
  );
}
