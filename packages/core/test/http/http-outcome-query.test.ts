import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MemoryStorage,
  Tcc,
  type TccHttpHandler,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { CrashingStorage, SimulatedCrash } from '../support/crashing-storage.js';
import {
  Accounts,
  command,
  contextHeader,
  type Freeze,
  origin,
  SECRET,
  send,
  stoppedAfterEach,
  tryRequest,
} from './support.js';

// A branch that tried and never heard from the record that enlisted it (its root crashed
// before its commit point, lost its log, or never existed) asks that record's service for the
// outcome once its deadline and a claim's length have passed, and finishes accordingly.

const LEASE = 1_000;

interface ManualClock {
  t: number;
  now(): number;
}

const { servers, runtimes } = stoppedAfterEach();

/** A server whose handler can be replaced: the same address, served by a restarted runtime. */
async function listen(port = 0): Promise<{ url: string; handler: { current: TccHttpHandler | undefined } }> {
  const handler: { current: TccHttpHandler | undefined } = { current: undefined };
  const server = createServer((req, res) => {
    if (handler.current === undefined) return send(res, 503, { error: { code: 'DOWN' } });
    handler.current(req, res, () => send(res, 404, { error: { code: 'NOT_FOUND' } }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handler };
}

/** The branch's service: `POST /freeze` freezes funds as a branch; confirm spends, cancel releases. */
async function startCapital(
  clock: ManualClock,
  http: { secret?: string; peers?: Record<string, string> } = {},
  recovery: { maxRetries?: number } = {},
) {
  const storage = new MemoryStorage();
  const tcc = new Tcc({
    domain: 'capital',
    storage,
    clock,
    recovery: { recoverAfterMs: LEASE, ...recovery },
    http,
  });
  runtimes.push(tcc);
  const accounts = new Accounts({ alice: 100 });
  const freeze = tcc.compensable('capital.freeze', {
    propagation: 'MANDATORY',
    try: (f: Freeze) => accounts.freeze(f.orderId, f.user, f.amount),
    confirm: (f: Freeze) => accounts.confirm(f.orderId),
    cancel: (f: Freeze) => accounts.cancel(f.orderId, f.user),
  });
  const handle = tcc.httpHandler();
  const server = createServer((req, res) =>
    handle(req, res, () => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        await freeze(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Freeze);
        send(res, 200, { frozen: true });
      })().catch((error: Error) => send(res, 400, { error: { message: error.message } }));
    }),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const branch = async (): Promise<TransactionRecord> => {
    const { records } = await storage.list({});
    expect(records).toHaveLength(1);
    return records[0]!;
  };
  return { tcc, storage, accounts, url, branch };
}

/** A root runtime of domain `order` on `storage`, serving `.tcc` at `at` (its `http.url`). */
function rootOn(
  storage: TransactionStorage,
  clock: ManualClock,
  at: { url: string; handler: { current: TccHttpHandler | undefined } },
  http: { secret?: string; url?: string | null } = {},
): Tcc {
  const { url = at.url, secret } = http;
  const tcc = new Tcc({
    domain: 'order',
    storage,
    clock,
    recovery: { recoverAfterMs: LEASE },
    http: { ...(url === null ? {} : { url }), ...(secret === undefined ? {} : { secret }) },
  });
  runtimes.push(tcc);
  at.handler.current = tcc.httpHandler();
  return tcc;
}

/**
 * A root that tried its branch and died before its commit point: its log keeps the root
 * TRYING, and it never sent confirm or cancel.
 */
async function rootDiesBeforeCommit(
  clock: ManualClock,
  capitalUrl: string,
  at: Awaited<ReturnType<typeof listen>>,
  options: { secret?: string; url?: string | null } = {},
) {
  const storage = new MemoryStorage();
  const crashing = new CrashingStorage(storage, () => false);
  const root = rootOn(crashing, clock, at, options);
  const outcome = root.transaction(async () => {
    await root
      .http(capitalUrl, { domain: 'capital' })
      .post('/freeze', { orderId: 'o-1', user: 'alice', amount: 30 });
    crashing.dead = true;
    throw new SimulatedCrash('the root process died');
  });
  await expect(outcome).rejects.toBeInstanceOf(SimulatedCrash);
  at.handler.current = undefined;
  const [record] = (await storage.list({})).records;
  expect(record).toMatchObject({ status: 'TRYING' });
  return { storage, record: record! };
}

function manualClock(): ManualClock {
  const clock = { t: Date.now(), now: () => clock.t };
  return clock;
}

describe('a branch whose parent never decides asks it for the outcome', () => {
  it('its root died before the commit point: unreachable, the attempt is counted; restarted, the root cancels and the hold is released', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock);
    const at = await listen();
    const { storage, record } = await rootDiesBeforeCommit(clock, capital.url, at);
    const branch = await capital.branch();
    expect(branch).toMatchObject({
      status: 'TRIED',
      parent: { domain: 'order', xid: record.xid, endpoint: at.url },
    });
    expect(capital.accounts.frozen.get('o-1')).toBe(30);

    // Within the deadline and its grace the branch waits for its root.
    expect(await capital.tcc.recover(branch.xid)).toMatchObject({ outcome: 'waiting' });
    clock.t = branch.deadline + LEASE + 1;
    // Nobody serves the root's address: a failed attempt, counted, the branch still TRIED.
    const failed = await capital.tcc.recover(branch.xid);
    expect(failed).toMatchObject({ outcome: 'failed', status: 'TRIED' });
    expect(await capital.storage.get(branch.xid)).toMatchObject({
      status: 'TRIED',
      retries: 1,
      lastError: expect.stringContaining('asking order for the outcome failed'),
    });
    expect(capital.accounts.frozen.get('o-1')).toBe(30);

    // The root's process comes back on its log (its own recovery not started): asked, it
    // cancels its expired try then and there, which cancels the branch, and answers cancel.
    rootOn(storage, clock, at);
    clock.t += LEASE + 1;
    const asked = await capital.tcc.recover(branch.xid);
    expect(asked).toMatchObject({ outcome: 'finished', status: 'CANCELLED' });
    expect(capital.accounts.balances.get('alice')).toBe(100);
    expect(capital.accounts.frozen.size).toBe(0);
    expect(capital.accounts.calls).toEqual(['try:o-1', 'cancel:o-1']);
    expect(await storage.count({})).toBe(0);
  });

  it('its root lost its log: the root has no record, so the branch cancels itself', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock);
    const at = await listen();
    await rootDiesBeforeCommit(clock, capital.url, at);
    rootOn(new MemoryStorage(), clock, at);
    const branch = await capital.branch();
    clock.t = branch.deadline + LEASE + 1;
    expect(await capital.tcc.recover(branch.xid)).toMatchObject({
      outcome: 'cancelled',
      status: 'CANCELLED',
    });
    expect(capital.accounts.balances.get('alice')).toBe(100);
    expect(capital.accounts.calls).toEqual(['try:o-1', 'cancel:o-1']);
  });

  it('its root wrote its commit point and died before any confirm: the branch confirms itself', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock);
    const at = await listen();
    const storage = new MemoryStorage();
    const crashing = new CrashingStorage(storage, (op, r) => op === 'update' && r?.status === 'CONFIRMING');
    const root = rootOn(crashing, clock, at);
    await expect(
      root.transaction(() =>
        root.http(capital.url).post('/freeze', { orderId: 'o-2', user: 'alice', amount: 30 }),
      ),
    ).rejects.toMatchObject({ code: 'TCC_OUTCOME_UNKNOWN' });
    rootOn(storage, clock, at);
    const branch = await capital.branch();
    clock.t = branch.deadline + LEASE + 1;
    expect(await capital.tcc.recover(branch.xid)).toMatchObject({
      outcome: 'confirmed',
      status: 'CONFIRMED',
    });
    expect(capital.accounts.spent).toBe(30);
    expect(capital.accounts.calls).toEqual(['try:o-2', 'confirm:o-2']);
    // The root, recovered later, finds its branch done.
    const [left] = (await storage.list({})).records;
    const restarted = rootOn(storage, { t: clock.t + LEASE, now: () => clock.t + LEASE }, at);
    expect(await restarted.recover(left!.xid)).toMatchObject({ outcome: 'confirmed' });
    expect(capital.accounts.calls).toEqual(['try:o-2', 'confirm:o-2']);
  });

  it('a stray try (no root ever had it) is cancelled once its deadline has passed', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock);
    const at = await listen();
    rootOn(new MemoryStorage(), clock, at);
    const stray = origin({ deadline: clock.t + 5_000 });
    const header = contextHeader({ ...stray, parent: { ...stray.parent, endpoint: at.url } });
    expect(
      await tryRequest(capital.url, header, { orderId: 'stray', user: 'alice', amount: 40 }),
    ).toMatchObject({ status: 200 });
    expect(capital.accounts.frozen.get('stray')).toBe(40);
    clock.t = stray.deadline + LEASE + 1;
    expect(await capital.tcc.recover(stray.xid)).toMatchObject({ outcome: 'cancelled' });
    expect(capital.accounts.balances.get('alice')).toBe(100);
  });

  it('asks the URL this service was told for the domain (http.peers), not the one the try carried', async () => {
    const clock = manualClock();
    const at = await listen();
    const capital = await startCapital(clock, { peers: { order: at.url } });
    rootOn(new MemoryStorage(), clock, at);
    const stray = origin({ deadline: clock.t + 5_000 });
    // The try names an address where nothing answers; the peer map wins.
    const header = contextHeader({ ...stray, parent: { ...stray.parent, endpoint: 'http://127.0.0.1:9' } });
    await tryRequest(capital.url, header, { orderId: 'p', user: 'alice', amount: 10 });
    clock.t = stray.deadline + LEASE + 1;
    expect(await capital.tcc.recover(stray.xid)).toMatchObject({ outcome: 'cancelled' });
  });

  it('with http.peers, never asks a URL a try carried for a domain not listed there', async () => {
    const clock = manualClock();
    const at = await listen();
    rootOn(new MemoryStorage(), clock, at);
    const capital = await startCapital(clock, { peers: { stock: 'http://127.0.0.1:9' } });
    const stray = origin({ deadline: clock.t + 5_000 });
    // The header points at a live service that would answer "cancel"; it is not asked.
    const header = contextHeader({ ...stray, parent: { ...stray.parent, endpoint: at.url } });
    await tryRequest(capital.url, header, { orderId: 'u', user: 'alice', amount: 10 });
    clock.t = stray.deadline + LEASE + 1;
    expect(await capital.tcc.recover(stray.xid)).toMatchObject({
      outcome: 'failed',
      error: { code: 'TCC_UNKNOWN_PEER' },
    });
    expect(capital.accounts.frozen.get('u')).toBe(10);
  });

  it('a parent that has not decided yet (a branch still waiting for its own root) leaves it waiting, uncounted', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock);
    const at = await listen();
    const parentStorage = new MemoryStorage();
    rootOn(parentStorage, clock, at);
    const child = origin({ deadline: clock.t + 5_000 });
    const parentXid = 'parent-branch';
    await parentStorage.create({
      globalId: child.globalId,
      xid: parentXid,
      domain: 'order',
      rootDomain: 'shop',
      type: 'BRANCH',
      status: 'TRIED',
      participants: [{ id: 'p1', kind: 'remote', endpoint: capital.url, xid: child.xid, status: 'TRYING' }],
      attachments: {},
      retries: 0,
      version: 1,
      createdAt: clock.t,
      updatedAt: clock.t,
      deadline: child.deadline,
      dueAt: child.deadline + LEASE,
    });
    const header = contextHeader({ ...child, parent: { domain: 'order', xid: parentXid, endpoint: at.url } });
    await tryRequest(capital.url, header, { orderId: 'c', user: 'alice', amount: 10 });
    clock.t = child.deadline + LEASE + 1;
    expect(await capital.tcc.recover(child.xid)).toMatchObject({ outcome: 'waiting', status: 'TRIED' });
    expect(await capital.storage.get(child.xid)).toMatchObject({ retries: 0 });
  });

  it('with no address for the parent, every attempt fails naming what to set, and the branch is parked', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock, {}, { maxRetries: 2 });
    const at = await listen();
    await rootDiesBeforeCommit(clock, capital.url, at, { url: null });
    const branch = await capital.branch();
    expect(branch.parent).toEqual({ domain: 'order', xid: branch.globalId });
    clock.t = branch.deadline + LEASE + 1;
    const first = await capital.tcc.recover(branch.xid);
    expect(first).toMatchObject({ outcome: 'failed', error: { code: 'TCC_UNKNOWN_PEER' } });
    expect(String((first.error as Error).message)).toContain(
      'set http.url on that service, or add order to http.peers on this one',
    );
    clock.t += LEASE + 1;
    expect(await capital.tcc.recover(branch.xid)).toMatchObject({ outcome: 'parked' });
    expect(await capital.storage.get(branch.xid)).toMatchObject({ status: 'TRIED', retries: 2 });
    expect(capital.accounts.frozen.get('o-1')).toBe(30);
  });

  it('a service of another domain refuses to answer for it (421), and the attempt is counted', async () => {
    const clock = manualClock();
    const other = await listen();
    const stock = new Tcc({ domain: 'stock', storage: new MemoryStorage(), clock });
    runtimes.push(stock);
    other.handler.current = stock.httpHandler();
    const capital = await startCapital(clock, { peers: { order: other.url } });
    const stray = origin({ deadline: clock.t + 5_000 });
    await tryRequest(capital.url, contextHeader(stray), { orderId: 's', user: 'alice', amount: 10 });
    clock.t = stray.deadline + LEASE + 1;
    const result = await capital.tcc.recover(stray.xid);
    expect(result).toMatchObject({ outcome: 'failed', status: 'TRIED' });
    expect(String((result.error as Error).message)).toMatch(/421.*TCC_WRONG_DOMAIN/);
    expect(capital.accounts.frozen.get('s')).toBe(10);
  });

  it('with a secret the query is signed; an unsigned or altered one gets 401 and learns nothing', async () => {
    const clock = manualClock();
    const capital = await startCapital(clock, { secret: SECRET });
    const at = await listen();
    const { record } = await rootDiesBeforeCommit(clock, capital.url, at, { secret: SECRET });
    const restarted = new MemoryStorage();
    rootOn(restarted, clock, at, { secret: SECRET });
    const query = {
      action: 'query',
      globalId: record.globalId,
      xid: record.xid,
      branch: 'b',
      domain: 'order',
    };
    expect(await command(at.url, query)).toMatchObject({ status: 401 });
    expect(await command(at.url, query, { secret: 'another-secret-of-32-characters!!' })).toMatchObject({
      status: 401,
    });
    const branch = await capital.branch();
    clock.t = branch.deadline + LEASE + 1;
    expect(await capital.tcc.recover(branch.xid)).toMatchObject({ outcome: 'cancelled' });
  });
});

describe('the .tcc query, on the wire', () => {
  async function rootWith(records: TransactionRecord[]) {
    const at = await listen();
    const storage = new MemoryStorage();
    for (const r of records) await storage.create(r);
    rootOn(storage, manualClock(), at);
    return at.url;
  }

  function rootRecord(status: TransactionRecord['status'], branch: string): TransactionRecord {
    const now = Date.now();
    const xid = `g-${Math.random().toString(36).slice(2)}`;
    return {
      globalId: xid,
      xid,
      domain: 'order',
      rootDomain: 'order',
      type: 'ROOT',
      status,
      participants: [{ id: 'p1', kind: 'remote', endpoint: 'http://x', xid: branch, status: 'TRYING' }],
      attachments: {},
      retries: 0,
      version: 1,
      createdAt: now,
      updatedAt: now,
      deadline: now + 60_000,
      dueAt: now + 60_000,
    };
  }

  it('answers from the log: confirm once the commit point is written, cancel once cancelled, pending while trying', async () => {
    const confirming = rootRecord('CONFIRMING', 'b1');
    const cancelling = rootRecord('CANCELLING', 'b2');
    const trying = rootRecord('TRYING', 'b3');
    const url = await rootWith([confirming, cancelling, trying]);
    const ask = (r: TransactionRecord, branch: string) =>
      command(url, { action: 'query', globalId: r.globalId, xid: r.xid, branch, domain: 'order' });
    expect(await ask(confirming, 'b1')).toMatchObject({ status: 200, body: { outcome: 'confirm' } });
    expect(await ask(cancelling, 'b2')).toMatchObject({ status: 200, body: { outcome: 'cancel' } });
    expect(await ask(trying, 'b3')).toMatchObject({ status: 200, body: { outcome: 'pending' } });
    // A branch the record never enlisted, or a record of another transaction: never confirmed.
    expect(await ask(confirming, 'forged')).toMatchObject({
      status: 200,
      body: { outcome: 'cancel', detail: expect.stringContaining('never enlisted branch forged') },
    });
    expect(
      await command(url, {
        action: 'query',
        globalId: 'other',
        xid: confirming.xid,
        branch: 'b1',
        domain: 'order',
      }),
    ).toMatchObject({ status: 200, body: { outcome: 'cancel' } });
  });

  it('refuses a malformed query with 400 naming the field, and answers a batch of mixed commands one by one', async () => {
    const confirming = rootRecord('CONFIRMING', 'b1');
    const url = await rootWith([confirming]);
    const base = { action: 'query', globalId: confirming.globalId, xid: confirming.xid };
    expect(await command(url, { ...base, domain: 'order' })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining('branch must be the xid of the branch asking') } },
    });
    expect(await command(url, { ...base, branch: 'b1', domain: '-bad' })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining('domain must be the domain asked') } },
    });
    expect(await command(url, { ...base, action: 'ask', branch: 'b1', domain: 'order' })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining('(confirm, cancel or query)') } },
    });
    const batch = await command(url, {
      commands: [
        { ...base, branch: 'b1', domain: 'order' },
        { action: 'cancel', globalId: 'g-none', xid: 'x-none' },
      ],
    });
    expect(batch).toMatchObject({
      status: 200,
      body: {
        results: [
          { status: 200, outcome: 'confirm' },
          { status: 200, ok: true },
        ],
      },
    });
  });
});
