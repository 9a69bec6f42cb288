import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);
const HOST = '127.0.0.1';

/** A free TCP port on loopback, found by listening on port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

/** One throwaway `redis-server` process on loopback. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** Kills the process (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again with the same arguments, after `kill`. */
  restart(): Promise<void>;
  /** Sends `signal` without waiting for anything (SIGSTOP freezes the server, SIGCONT resumes it). */
  signal(signal: NodeJS.Signals): void;
}

/** A set of throwaway servers in one temporary directory, killed and deleted by `stop()`. */
export interface RedisServers {
  readonly dir: string;
  readonly servers: RedisServer[];
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

async function launch(args: string[], dir: string, port: number, ping = true): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  // redis-server logs to stdout: keep the tail for the error message of a failed start.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(`cannot start redis-server (${error.message}): install it (apt-get install redis-server)`, {
          cause: error,
        }),
      ),
    );
    child.once('exit', (code, signal) =>
      reject(new Error(`redis-server on port ${port} exited (${code ?? signal}): ${output}`)),
    );
  });
  exited.catch(() => {});
  child.once('exit', () => live.delete(child));
  await Promise.race([waitForPing(port, ping), exited]);
  return child;
}

async function waitForPing(port: number, ping: boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const client = new Redis({
      host: HOST,
      port,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      if (ping) await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      await sleep(25);
    }
  }
  throw new Error(`redis-server on port ${port} did not answer`);
}

/** Attempts at a server whose free ports were taken before it bound them. */
const BIND_ATTEMPTS = 5;

async function startServer(
  dir: string,
  args: (port: number) => string[] | Promise<string[]>,
  ping = true,
  knownPort?: number,
): Promise<RedisServer> {
  let port: number;
  let argv: string[];
  let child: ChildProcess;
  for (let attempt = 1; ; attempt++) {
    port = knownPort ?? (await freePort());
    argv = await args(port);
    try {
      child = await launch(argv, dir, port, ping);
      break;
    } catch (error) {
      // A port found free can be taken before the server binds it (by another test's server,
      // or as the source port of some outgoing connection): choose again.
      const taken = error instanceof Error && error.message.includes('Address already in use');
      if (!taken || knownPort !== undefined || attempt >= BIND_ATTEMPTS) throw error;
    }
  }
  return {
    host: HOST,
    port,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
    async restart() {
      child = await launch(argv, dir, port, ping);
    },
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

function baseArgs(port: number): string[] {
  return ['--port', `${port}`, '--bind', HOST, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
}

async function servers(name: string, build: (dir: string, servers: RedisServer[]) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), `tcc-${name}-`));
  const list: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(list.map((s) => s.kill('SIGKILL')));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await build(dir, list);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, servers: list, stop };
}

/** `n` standalone servers (for client-side shards). */
export function startStandalone(n: number): Promise<RedisServers> {
  return servers('shards', async (dir, list) => {
    list.push(...(await Promise.all(Array.from({ length: n }, () => startServer(dir, baseArgs)))));
  });
}

/** A Redis Cluster of `masters` masters and no replicas, `cluster_state:ok` when it resolves. */
export function startCluster(masters = 3): Promise<RedisServers> {
  return servers('cluster', async (dir, list) => {
    // The cluster bus listens on a port of its own, by default the node's port + 10000, which
    // nothing checked was free: a free one is chosen for it too (again on each attempt).
    list.push(
      ...(await Promise.all(
        Array.from({ length: masters }, () =>
          startServer(dir, async (port) => [
            ...baseArgs(port),
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            `${await freePort()}`,
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
          ]),
        ),
      )),
    );
    await run('redis-cli', [
      '--cluster',
      'create',
      ...list.map((s) => `${HOST}:${s.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const server of list) {
      await until(`cluster_state:ok on ${server.port}`, async () => {
        const client = new Redis({
          host: HOST,
          port: server.port,
          lazyConnect: true,
          retryStrategy: () => null,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          return (await client.cluster('INFO')).includes('cluster_state:ok');
        } finally {
          client.disconnect();
        }
      });
    }
  });
}

/** A Sentinel setup: `servers[0]` is the primary, then the replicas, then the sentinels. */
export interface SentinelServers extends RedisServers {
  readonly name: string;
  readonly primary: RedisServer;
  readonly replicas: RedisServer[];
  readonly sentinels: RedisServer[];
}

/**
 * One primary, `replicas` replicas and `sentinels` sentinels (`redis-server conf --sentinel`),
 * with short failure detection (down after `downAfterMs`, default 500 ms) so a failover takes a
 * few seconds. Resolves once every sentinel knows every replica.
 */
export async function startSentinel(
  options: { replicas?: number; sentinels?: number; downAfterMs?: number } = {},
): Promise<SentinelServers> {
  const { replicas: replicaCount = 1, sentinels: sentinelCount = 1, downAfterMs = 500 } = options;
  const name = 'tccprimary';
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const set = await servers('sentinel', async (dir, list) => {
    const primary = await startServer(dir, baseArgs);
    list.push(primary);
    const replicas = await Promise.all(
      Array.from({ length: replicaCount }, () =>
        startServer(dir, (port) => [...baseArgs(port), '--replicaof', HOST, `${primary.port}`]),
      ),
    );
    list.push(...replicas);
    const ports = await Promise.all(Array.from({ length: sentinelCount }, () => freePort()));
    const sentinels = await Promise.all(
      ports.map(async (port) => {
        const conf = join(dir, `sentinel-${port}.conf`);
        await writeFile(
          conf,
          [
            `port ${port}`,
            `bind ${HOST}`,
            `dir ${dir}`,
            `sentinel monitor ${name} ${HOST} ${primary.port} ${quorum}`,
            `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
            `sentinel failover-timeout ${name} 5000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        return startServer(dir, () => [conf, '--sentinel'], true, port);
      }),
    );
    list.push(...sentinels);
    for (const sentinel of sentinels) {
      await until(`sentinel ${sentinel.port} to see ${replicaCount} replicas`, async () => {
        const client = new Redis({
          host: HOST,
          port: sentinel.port,
          lazyConnect: true,
          retryStrategy: () => null,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          const seen = (await client.call('SENTINEL', ['REPLICAS', name])) as unknown[];
          const others = (await client.call('SENTINEL', ['SENTINELS', name])) as unknown[];
          return seen.length === replicaCount && others.length === sentinelCount - 1;
        } finally {
          client.disconnect();
        }
      });
    }
  });
  const primary = set.servers[0]!;
  return {
    ...set,
    name,
    primary,
    replicas: set.servers.slice(1, 1 + replicaCount),
    sentinels: set.servers.slice(1 + replicaCount),
  };
}

/**
 * One more replica, of the server at `of` (such as a primary Sentinel promoted), in the set's
 * directory: `stop()` kills it with the rest. Resolves once it answers, not once it has synced.
 */
export async function startReplica(
  set: RedisServers,
  of: { host: string; port: number },
): Promise<RedisServer> {
  const replica = await startServer(set.dir, (port) => [
    ...baseArgs(port),
    '--replicaof',
    of.host,
    `${of.port}`,
  ]);
  set.servers.push(replica);
  return replica;
}

/** Polls `check` until it returns true (10 s at most). */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
