import { execFile } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startStandalone } from './redis-servers.js';

const run = promisify(execFile);

/** A server the suite talks to: the one configured, or a throwaway one started for the run. */
export interface TestServer {
  readonly url: string;
  /** Whether this run started it (and `stop()` ends it). */
  readonly started: boolean;
  stop(): Promise<void>;
}

/** Whether something accepts TCP connections at `url`'s host and port. */
export function answers(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || defaultPort) });
    socket.setTimeout(2_000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** The Redis at `url`, or, where nothing answers there, a throwaway `redis-server` on a free port. */
export async function ensureRedis(url: string): Promise<TestServer> {
  if (await answers(url, 6379)) return { url, started: false, stop: async () => {} };
  const { servers, stop } = await startStandalone(1);
  const server = servers[0]!;
  return { url: `redis://${server.host}:${server.port}`, started: true, stop };
}

/**
 * The PostgreSQL at `url`, or, where nothing answers there, a throwaway cluster (`initdb`,
 * `pg_ctl`) in a temporary directory on a free port, trust authentication, user `postgres`.
 */
export async function ensurePostgres(url: string): Promise<TestServer> {
  if (await answers(url, 5432)) return { url, started: false, stop: async () => {} };
  const bin = postgresBin();
  const dir = await mkdtemp(join(tmpdir(), 'tcc-postgres-'));
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
  const asRoot = process.getuid?.() === 0;
  const exec = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  const port = await freePort();
  const stop = async () => {
    await exec('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']);
    await exec('pg_ctl', [
      '-D',
      data,
      '-w',
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
    // Made here, once: test files that each found it missing would race to create it.
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query('CREATE DATABASE test').finally(() => admin.end());
  } catch (error) {
    await stop();
    throw new Error(`cannot start a throwaway PostgreSQL in ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/test`, started: true, stop };
}

/** The folder of `initdb` and `pg_ctl`: on the PATH, else Debian's newest PostgreSQL. */
function postgresBin(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    // Debian links initdb into /usr/local/bin; its siblings are where the link points.
    if (dir !== '' && existsSync(join(dir, 'initdb'))) return dirname(realpathSync(join(dir, 'initdb')));
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const dir = join(root, version, 'bin');
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    'no PostgreSQL answers and initdb/pg_ctl are not installed: apt-get install postgresql (or set DATABASE_URL)',
  );
}
