import { readFile } from 'node:fs/promises';
import { type RecoveryResult, Tcc, type TransactionRecord, type TransactionStorage } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  type RedisServer,
  type SentinelServers,
  sleep,
  startReplica,
  startSentinel,
  until,
} from '../../../test/support/redis-servers.js';

/**
 * Issue 11, item 8: a primary, one replica and three Sentinels. While transactions run, the
 * replica stops acknowledging: it is frozen (SIGSTOP) and the primary drops its replication link
 * (`CLIENT KILL TYPE replica`), so what the primary applies from then on exists on the primary
 * alone. The primary is then SIGKILLed and the replica resumed (SIGCONT), and Sentinel promotes
 * it: every write made after the link was cut is gone. A fresh replica then follows the new
 * primary (as the old one would, once back), recovery runs there until nothing is stuck, and a
 * ledger of the business confirms and cancels says what each participant went through.
 *
 * To make the loss certain rather than likely, the transactions that cross the cut are held: one
 * per worker waits inside a try (half in the first, half in the second) until the replica has
 * every write so far (its offset caught up) and the link is cut. Only then do they go on to
 * their next write (the second enlist, or the commit point), which no replica will ever have.
 * The workers also run transactions before the cut, after it, while the primary dies and after
 * the promotion, which must end as consistently.
 */

const WORKERS = 4;
/** Transactions a worker begins at most while the link is cut (with `replicas: 0`, nothing slows them). */
const WINDOW_RUNS = 3;
/**
 * Each write's `WAIT` blocks the connection the workers share, so with the replica gone writes
 * fail one timeout after another: kept short to keep the run short. A slow acknowledgement
 * before the cut fails a write too, which the assertions allow (the log writes it again).
 */
const REPLICA_TIMEOUT_MS = 400;
/**
 * Recovery runs as another process would an hour later, past every try's deadline and every
 * claim of the process that ran the transactions (stopped by then), without the test waiting.
 */
const RECOVERY_CLOCK_AHEAD_MS = 3_600_000;
/** Long enough that no held transaction reaches its deadline however slow the machine. */
const TRY_TIMEOUT_MS = 600_000;

type Phase = 'before' | 'held' | 'window' | 'failover' | 'after';
const TOLD_CONFIRMED = new Set(['confirmed', 'TCC_CONFIRM_FAILED']);

/** One transaction as its caller and its participants saw it. */
interface Tx {
  readonly key: string;
  readonly worker: number;
  phase: Phase;
  /** The participant whose try held it while the link was cut. */
  heldIn?: 'a' | 'b';
  xid?: string | undefined;
  /** `confirmed` (the call resolved) or the code of the error it threw. */
  outcome?: string;
  /** In order: `a tried`, `b confirmed`, `told TCC_OUTCOME_UNKNOWN`... */
  readonly events: string[];
}

interface Run {
  readonly txs: Tx[];
  /** Writes and reads per xid, by the runtime that made them, with their result. */
  readonly traces: Map<string, string[]>;
  /** Records left unfinished after recovery (none expected). */
  readonly unfinished: TransactionRecord[];
  readonly recoveries: RecoveryResult[];
}

/** Records every store call of one runtime, per xid, to show what happened to a transaction. */
class Tracing extends CountingStorage {
  constructor(
    inner: TransactionStorage,
    private readonly who: string,
    private readonly traces: Map<string, string[]>,
  ) {
    super(inner);
  }
  override create(record: TransactionRecord) {
    return this.#trace(record.xid, `create ${show(record)}`, super.create(record));
  }
  override update(record: TransactionRecord, expectedVersion: number) {
    return this.#trace(record.xid, `update ${show(record)}`, super.update(record, expectedVersion));
  }
  override complete(record: TransactionRecord, expectedVersion: number) {
    return this.#trace(record.xid, `complete ${show(record)}`, super.complete(record, expectedVersion));
  }
  override remove(xid: string, expectedVersion: number) {
    return this.#trace(xid, `remove v${expectedVersion}`, super.remove(xid, expectedVersion));
  }
  override async get(xid: string) {
    const record = await this.#trace(xid, 'get', super.get(xid));
    this.#line(xid, `  read ${record === undefined ? 'nothing' : show(record)}`);
    return record;
  }
  async #trace<T>(xid: string, what: string, call: Promise<T>): Promise<T> {
    try {
      const result = await call;
      this.#line(xid, `${what}: ok`);
      return result;
    } catch (error) {
      this.#line(xid, `${what}: ${codeOf(error)}`);
      throw error;
    }
  }
  #line(xid: string, line: string): void {
    const lines = this.traces.get(xid) ?? [];
    lines.push(`${this.who} ${line}`);
    this.traces.set(xid, lines);
  }
}

function show(record: TransactionRecord): string {
  const participants = record.participants.map((p) => `${p.id}:${p.status}`).join(',');
  return `${record.status} v${record.version} [${participants}]`;
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}

/** A plain connection to one server, for INFO and admin commands. */
async function direct<T>(server: RedisServer, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: server.host,
    port: server.port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

async function info(server: RedisServer, section: string): Promise<Map<string, string>> {
  const text = await direct(server, (c) => c.info(section));
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Rejects, naming what is still running, if `work` has not ended within `ms`. */
async function within<T>(work: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function scenario(replicas: 0 | 1): Promise<Run> {
  const txs: Tx[] = [];
  const byKey = new Map<string, Tx>();
  const traces = new Map<string, string[]>();
  const clients: Redis[] = [];
  let servers: SentinelServers | undefined;

  let phase: Phase = 'before';
  let running = true;
  let phaseChanged = deferred();
  const enter = (next: Phase) => {
    phase = next;
    phaseChanged.resolve();
    phaseChanged = deferred();
  };
  let holding = false;
  const gate = deferred();
  const held: Tx[] = [];

  const sentinelClient = (set: SentinelServers) => {
    const client = new Redis({
      sentinels: set.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: set.name,
      maxRetriesPerRequest: 1,
      failoverDetector: true,
    });
    client.on('error', () => {});
    clients.push(client);
    return client;
  };
  const ledger = (key: string, event: string) => byKey.get(key)?.events.push(event);
  /**
   * Even workers are held in their first try, so the enlist of the second participant is the
   * first write to cross the cut; odd workers in their second, so the commit point is.
   */
  const hold = async (key: string, participant: 'a' | 'b') => {
    const tx = byKey.get(key);
    if (!holding || tx === undefined || tx.worker % 2 !== (participant === 'a' ? 0 : 1)) return;
    tx.phase = 'held';
    tx.heldIn = participant;
    held.push(tx);
    await gate.promise;
  };
  /** The two participants, with the same names (and ledger) in every runtime. */
  const participants = (tcc: Tcc) =>
    [
      tcc.compensable('a.step', {
        try: async (key: string) => {
          ledger(key, 'a tried');
          await hold(key, 'a');
        },
        confirm: async (key: string) => void ledger(key, 'a confirmed'),
        cancel: async (key: string) => void ledger(key, 'a cancelled'),
      }),
      tcc.compensable('b.step', {
        try: async (key: string) => {
          ledger(key, 'b tried');
          await hold(key, 'b');
        },
        confirm: async (key: string) => void ledger(key, 'b confirmed'),
        cancel: async (key: string) => void ledger(key, 'b cancelled'),
      }),
    ] as const;

  try {
    // Down after 2 s rather than 500 ms: a busy machine must not look like a dead primary.
    servers = await startSentinel({ replicas: 1, sentinels: 3, downAfterMs: 2_000 });
    const set = servers;
    const [primary, replica] = [set.primary, set.replicas[0]!];
    const store = new RedisStorage({
      client: sentinelClient(set),
      replicas,
      replicaTimeoutMs: REPLICA_TIMEOUT_MS,
    });
    await store.migrate();
    const tcc = new Tcc({
      domain: 'order',
      storage: new Tracing(store, 'app', traces),
      timeoutMs: TRY_TIMEOUT_MS,
    });
    const [a, b] = participants(tcc);

    let serial = 0;
    const worker = async (w: number) => {
      let windowRuns = 0;
      while (running) {
        if (phase === 'window' && windowRuns >= WINDOW_RUNS) {
          await phaseChanged.promise;
          continue;
        }
        const tx: Tx = { key: `w${w}-${serial++}`, worker: w, phase, events: [] };
        if (phase === 'window') windowRuns++;
        txs.push(tx);
        byKey.set(tx.key, tx);
        try {
          await tcc.transaction(async () => {
            tx.xid = tcc.current()?.globalId;
            await a(tx.key);
            await b(tx.key);
          });
          tx.outcome = 'confirmed';
        } catch (error) {
          tx.outcome = codeOf(error);
          // Do not spin against a store that is down.
          await sleep(20);
        }
        tx.events.push(`told ${tx.outcome}`);
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    const inFlight = () =>
      txs
        .filter((t) => t.outcome === undefined)
        .map((t) => `${t.key} (${t.phase}) ${t.events.join(', ')}`)
        .join('; ');
    const done = (p: Phase) => txs.filter((t) => t.phase === p && t.outcome === 'confirmed').length;

    await until('transactions with the replica in sync', async () => done('before') >= 4 * WORKERS, 60_000);

    // Hold one transaction per worker, each after an enlist the replica has.
    holding = true;
    await until('every worker to hold a transaction', async () => held.length === WORKERS, 60_000);

    // The replica has every write so far (with `replicas: 0` too, where nobody waited for it).
    const offset = Number((await info(primary, 'replication')).get('master_repl_offset'));
    await until(
      'the replica to catch up',
      async () => Number((await info(replica, 'replication')).get('slave_repl_offset')) >= offset,
      30_000,
    );
    const pid = (await info(replica, 'server')).get('process_id');
    replica.signal('SIGSTOP');
    await until('the replica to be stopped', async () => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
    });
    // Frozen, the replica cannot connect again: the primary now has nobody to send writes to.
    await direct(primary, (c) => c.call('CLIENT', ['KILL', 'TYPE', 'replica']));
    await until(
      'the primary to have no replica',
      async () => (await info(primary, 'replication')).get('connected_slaves') === '0',
    );

    enter('window');
    holding = false;
    gate.resolve();
    await until(
      'the held transactions and one begun after the cut to end',
      async () =>
        held.every((t) => t.outcome !== undefined) &&
        txs.some((t) => t.phase === 'window' && t.outcome !== undefined),
      60_000,
    );

    // Killed while the workers go on; only then does the replica wake, so it cannot fetch what
    // the primary applied after the link was cut.
    enter('failover');
    await primary.kill('SIGKILL');
    replica.signal('SIGCONT');
    await until(
      'Sentinel to promote the replica',
      async () => {
        if ((await info(replica, 'replication')).get('role') !== 'master') return false;
        for (const sentinel of set.sentinels) {
          const [, port] = await direct(
            sentinel,
            (c) => c.call('SENTINEL', ['GET-MASTER-ADDR-BY-NAME', set.name]) as Promise<string[]>,
          );
          if (Number(port) !== replica.port) return false;
        }
        return true;
      },
      60_000,
    );
    // The new primary needs a replica of its own for writes with `replicas: 1` to be acknowledged.
    await startReplica(set, replica);
    await until(
      'a replica of the new primary',
      async () => (await info(replica, 'replication')).get('slave0')?.includes('state=online') === true,
      60_000,
    );
    enter('after');
    await until('transactions after the failover', async () => done('after') >= WORKERS, 60_000);
    running = false;
    enter('after');
    await within(Promise.all(workers), 60_000, () => `transactions still running: ${inFlight()}`);
    await within(tcc.stop(), 60_000, () => 'tcc.stop()');

    // Recovery, connected afresh to whichever server Sentinel names.
    const recoveryStore = new RedisStorage({
      client: sentinelClient(set),
      replicas,
      replicaTimeoutMs: REPLICA_TIMEOUT_MS,
    });
    const recovery = new Tcc({
      domain: 'order',
      storage: new Tracing(recoveryStore, 'recovery', traces),
      clock: { now: () => Date.now() + RECOVERY_CLOCK_AHEAD_MS },
    });
    participants(recovery);
    const recoveries: RecoveryResult[] = [];
    let lastError: unknown;
    await until(
      'recovery to leave nothing stuck',
      async () => {
        try {
          const { records } = await recoveryStore.findStuck({
            domain: 'order',
            dueBefore: Date.now() + RECOVERY_CLOCK_AHEAD_MS,
            limit: 100,
          });
          for (const record of records) recoveries.push(await recovery.recover(record.xid));
          return records.length === 0;
        } catch (error) {
          lastError = error;
          throw error;
        }
      },
      60_000,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} (last error: ${codeOf(lastError)})`);
    });
    await recovery.stop();
    const unfinished = (await recoveryStore.list({ domain: 'order', limit: 1000 })).records.filter(
      (r) => r.status !== 'CONFIRMED' && r.status !== 'CANCELLED',
    );
    return { txs, traces, unfinished, recoveries };
  } finally {
    running = false;
    gate.resolve();
    enter('after');
    for (const client of clients) client.disconnect();
    await servers?.stop();
  }
}

/** What went wrong with one transaction, if anything (participants `a` and `b`). */
function problems(tx: Tx): string[] {
  const did = (what: string) => new Set(['a', 'b'].filter((p) => tx.events.includes(`${p} ${what}`)));
  const tried = did('tried');
  const confirmed = did('confirmed');
  const cancelled = did('cancelled');
  const found: string[] = [];
  if (TOLD_CONFIRMED.has(tx.outcome ?? '') && cancelled.size > 0)
    found.push('told confirmed, later cancelled');
  if ([...confirmed].some((p) => cancelled.has(p))) found.push('a participant both confirmed and cancelled');
  if (confirmed.size > 0 && confirmed.size < 2) found.push('confirmed in part');
  if (TOLD_CONFIRMED.has(tx.outcome ?? '') && confirmed.size < 2) found.push('told confirmed, not confirmed');
  if (confirmed.size === 0 && [...tried].some((p) => !cancelled.has(p))) found.push('tried, never settled');
  return found;
}

/** The first few of `txs`, with their ledger and the store calls made for them. */
function report(run: Run, txs: Tx[]): string {
  return txs
    .slice(0, 5)
    .map((tx) =>
      [
        `${tx.key} (${tx.phase}, xid ${tx.xid}): ${problems(tx).join('; ')}`,
        `  ledger: ${tx.events.join(', ')}`,
        ...(run.traces.get(tx.xid ?? '') ?? []).map((line) => `  ${line}`),
      ].join('\n'),
    )
    .join('\n');
}

/** What recovery could not finish, with the store calls made for it. */
function leftovers(run: Run): string {
  return run.unfinished
    .map((record) =>
      [
        show(record),
        ...run.recoveries
          .filter((r) => r.xid === record.xid)
          .map((r) => `  recover: ${r.outcome} ${codeOf(r.error)}`),
        ...(run.traces.get(record.xid) ?? []).map((line) => `  ${line}`),
      ].join('\n'),
    )
    .join('\n');
}

const lost = (tx: Tx) => problems(tx).includes('told confirmed, later cancelled');

describe('a commit point no replica has, lost in a failover (issue 11, item 8)', () => {
  it('with replicas: 1, no caller told confirmed is cancelled, and every transaction ends whole', async () => {
    const run = await scenario(1);
    const wrong = run.txs.filter((tx) => problems(tx).length > 0);
    expect(wrong.length, report(run, wrong)).toBe(0);
    expect(run.unfinished.length, leftovers(run)).toBe(0);
    // The scenario reached what it is about (and the transactions ended consistently, above):
    // a commit point no replica acknowledged, whose outcome the caller is told is unknown; an
    // enlist no replica acknowledged, refused before the try (and its cancel, unacknowledged
    // too, left to recovery on the new primary); creates refused the same way.
    const held = run.txs.filter((tx) => tx.phase === 'held');
    expect(held.map((tx) => `${tx.heldIn} ${tx.outcome}`).sort()).toEqual([
      ...Array(WORKERS / 2).fill('a TCC_REPLICATION_TIMEOUT'),
      ...Array(WORKERS / 2).fill('b TCC_OUTCOME_UNKNOWN'),
    ]);
    expect(run.txs.filter((tx) => tx.phase === 'window').map((tx) => tx.outcome)).toContain(
      'TCC_REPLICATION_TIMEOUT',
    );
  }, 180_000);

  it('with replicas: 0, the same failover cancels transactions whose callers were told confirmed', async () => {
    const run = await scenario(0);
    // Every held transaction confirmed on the primary alone; the promoted replica had it TRYING
    // (with one participant or both), so recovery cancelled it.
    const held = run.txs.filter((tx) => tx.phase === 'held');
    expect(held).toHaveLength(WORKERS);
    expect(held.filter(lost).map((tx) => tx.key)).toEqual(held.map((tx) => tx.key));
    expect(run.unfinished.length, leftovers(run)).toBe(0);
  }, 180_000);
});
