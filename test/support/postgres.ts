import { randomBytes } from 'node:crypto';
import pg from 'pg';

export { pg };

/** The machine's PostgreSQL (DESIGN.md §9); `DATABASE_URL` overrides. Loopback only. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const HOW_TO_START =
  'start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` ' +
  '(or set DATABASE_URL to a running server)';

/** A pool on the test database, and schemas made for one test file, all dropped by `end()`. */
export interface PostgresHarness {
  readonly pool: pg.Pool;
  readonly url: string;
  /** A new, unused schema name (not created: `migrate()` creates it); dropped by `end()` or `drop()`. */
  schema(): string;
  /** Drops one schema made by `schema()` now. */
  drop(schema: string): Promise<void>;
  /** A second pool of its own (e.g. to race migrations), ended by `end()`. */
  newPool(max?: number): pg.Pool;
  /** Drops every schema made here and ends the pools. */
  end(): Promise<void>;
}

/**
 * Connects to the test database (creating it if the server lacks it). A missing server is a
 * failure whose message says how to start it, never a skip.
 */
export async function openPostgres(options: { max?: number } = {}): Promise<PostgresHarness> {
  await ensureDatabase();
  const pools: pg.Pool[] = [];
  const newPool = (max = options.max ?? 10) => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
    // An idle connection dropped by the server must not crash the test process.
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  };
  const pool = newPool();
  const schemas = new Set<string>();
  const prefix = `tcc_test_${process.pid}_${randomBytes(3).toString('hex')}`;
  let n = 0;
  const drop = async (schema: string) => {
    schemas.delete(schema);
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  };
  return {
    pool,
    url: DATABASE_URL,
    schema() {
      const schema = `${prefix}_${n++}`;
      schemas.add(schema);
      return schema;
    },
    drop,
    newPool,
    async end() {
      try {
        for (const schema of [...schemas]) await drop(schema);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    },
  };
}

async function ensureDatabase(): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return;
  } catch (error) {
    await client.end().catch(() => {});
    if ((error as { code?: string }).code !== '3D000') {
      throw new Error(
        `PostgreSQL is not reachable at ${redact(DATABASE_URL)} (${(error as Error).message}): ${HOW_TO_START}`,
        { cause: error },
      );
    }
  }
  // The server runs but lacks the database: create it through the maintenance database.
  const url = new URL(DATABASE_URL);
  const database = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  admin.on('error', () => {});
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } catch (error) {
    if (!['42P04', '23505'].includes((error as { code?: string }).code ?? '')) throw error; // created meanwhile
  } finally {
    await admin.end();
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
