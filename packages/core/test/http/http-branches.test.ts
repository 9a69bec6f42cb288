import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, RemoteCallError, RemoteTimeoutError, Tcc } from '@tcc/core';
import { tccFetch } from '@tcc/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import { command, contextHeader, origin, type Service, startService, tryRequest } from './support.js';

const services: Service[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close().catch(() => {})));
});

async function start(domain: string, options: Parameters<typeof startService>[1] = {}) {
  const service = await startService(domain, options);
  services.push(service);
  return service;
}

function root(options: { timeoutMs?: number } = {}) {
  const storage = new MemoryStorage();
  const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 }, ...options });
  return { tcc, storage };
}

describe('remote branches over HTTP', () => {
  it('confirms both remote branches, leaving CONFIRMED tombstones and no root record', async () => {
    const capital = await start('capital');
    const packets = await start('red-packet');
    const { tcc, storage } = root();
    const result = await tcc.transaction(async () => {
      const a = await tcc.http(capital.url).post('/freeze', { orderId: 'o1', user: 'alice', amount: 30 });
      await tcc.http(packets.url).post('/freeze', { orderId: 'o1', user: 'alice', amount: 10 });
      return a;
    });
    expect(result).toEqual({ frozen: 30 });
    expect(capital.accounts.calls).toEqual(['try:o1', 'confirm:o1']);
    expect(packets.accounts.calls).toEqual(['try:o1', 'confirm:o1']);
    expect(capital.accounts.spent).toBe(30);
    expect(packets.accounts.spent).toBe(10);
    expect((await storage.list({})).records).toEqual([]);
    for (const service of [capital, packets]) {
      const [branch] = await service.records();
      expect(branch).toMatchObject({
        type: 'BRANCH',
        status: 'CONFIRMED',
        rootDomain: 'order',
        domain: service.tcc.domain,
      });
    }
  });

  it('cancels the remote branch already tried when a later remote try fails, and rethrows', async () => {
    const capital = await start('capital');
    const packets = await start('red-packet');
    const { tcc, storage } = root();
    const failure = tcc.transaction(async () => {
      await tcc.http(capital.url).post('/freeze', { orderId: 'o2', user: 'bob', amount: 30 });
      await tcc.http(packets.url).post('/freeze', { orderId: 'o2', user: 'bob', amount: 80 });
    });
    await expect(failure).rejects.toMatchObject({
      code: 'TCC_REMOTE_CALL_FAILED',
      status: 409,
      remoteCode: 'Refused',
    });
    expect(capital.accounts.calls).toEqual(['try:o2', 'cancel:o2']);
    expect(capital.accounts.balances.get('bob')).toBe(50);
    // The failed branch undid itself at once; the root's cancel then found its tombstone.
    expect(packets.accounts.calls).toEqual(['try:o2', 'cancel:o2']);
    expect((await storage.list({})).records).toEqual([]);
    expect((await capital.records()).map((r) => r.status)).toEqual(['CANCELLED']);
    expect((await packets.records()).map((r) => r.status)).toEqual(['CANCELLED']);
  });

  it('is a plain client outside a transaction, and MANDATORY refuses a call without a context', async () => {
    const capital = await start('capital');
    const { tcc, storage } = root();
    await expect(
      tcc.http(capital.url).post('/freeze', { orderId: 'o3', user: 'alice', amount: 1 }),
    ).rejects.toMatchObject({
      status: 400,
      remoteCode: 'TCC_TRANSACTION_REQUIRED',
    });
    expect(capital.accounts.calls).toEqual([]);
    expect(await capital.records()).toEqual([]);
    expect((await storage.list({})).records).toEqual([]);
  });

  it('tccFetch enlists the URL origin for code that calls fetch directly', async () => {
    const capital = await start('capital');
    const { tcc } = root();
    const fetch = tccFetch(tcc);
    await tcc.transaction(async () => {
      const response = await fetch(`${capital.url}/freeze`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId: 'o4', user: 'alice', amount: 5 }),
      });
      expect(response.status).toBe(200);
    });
    expect(capital.accounts.calls).toEqual(['try:o4', 'confirm:o4']);
  });
});

describe('the three anomalies, for remote branches', () => {
  it('a duplicate confirm or cancel is a no-op', async () => {
    const capital = await start('capital');
    const o = origin();
    expect(
      (await tryRequest(capital.url, contextHeader(o), { orderId: 'd1', user: 'alice', amount: 10 })).status,
    ).toBe(200);
    const confirm = { action: 'confirm', globalId: o.globalId, xid: o.xid };
    expect(await command(capital.url, confirm)).toMatchObject({ status: 200, body: { detail: 'confirmed' } });
    expect(await command(capital.url, confirm)).toMatchObject({
      status: 200,
      body: { detail: 'already confirmed' },
    });
    expect(capital.accounts.calls).toEqual(['try:d1', 'confirm:d1']);
    // A cancel after the confirm is refused: the branch is committed.
    expect((await command(capital.url, { ...confirm, action: 'cancel' })).status).toBe(409);

    const c = origin();
    await tryRequest(capital.url, contextHeader(c), { orderId: 'd2', user: 'alice', amount: 10 });
    const cancel = { action: 'cancel', globalId: c.globalId, xid: c.xid };
    expect((await command(capital.url, cancel)).status).toBe(200);
    expect(await command(capital.url, cancel)).toMatchObject({
      status: 200,
      body: { detail: 'already cancelled' },
    });
    expect(capital.accounts.calls.slice(2)).toEqual(['try:d2', 'cancel:d2']);
    expect(capital.accounts.balances.get('alice')).toBe(90);
  });

  it('cancel before try: empty rollback with a tombstone, and the late try is refused unrun', async () => {
    const capital = await start('capital');
    const o = origin();
    // The try request is "held" (not sent yet); its cancel arrives first.
    const cancelled = await command(capital.url, { action: 'cancel', globalId: o.globalId, xid: o.xid });
    expect(cancelled).toMatchObject({
      status: 200,
      body: { detail: expect.stringContaining('empty rollback') },
    });
    expect(await capital.records()).toMatchObject([{ xid: o.xid, status: 'CANCELLED', type: 'BRANCH' }]);
    const late = await tryRequest(capital.url, contextHeader(o), {
      orderId: 'h1',
      user: 'alice',
      amount: 10,
    });
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    expect(capital.accounts.calls).toEqual([]);
    expect(capital.accounts.balances.get('alice')).toBe(100);
    expect((await capital.records()).map((r) => [r.status, r.version])).toEqual([['CANCELLED', 1]]);
  });

  it('a try that arrives after the root deadline is refused and writes nothing', async () => {
    const capital = await start('capital');
    const late = await tryRequest(capital.url, contextHeader(origin({ deadline: Date.now() - 1 })), {
      orderId: 'h2',
      user: 'alice',
      amount: 10,
    });
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    expect(capital.accounts.calls).toEqual([]);
    expect(await capital.records()).toEqual([]);
  });

  it('a duplicate try (the caller retried) gets the first answer and does not run twice', async () => {
    const capital = await start('capital');
    const header = contextHeader(origin());
    const first = await tryRequest(capital.url, header, { orderId: 'r1', user: 'alice', amount: 10 });
    const again = await tryRequest(capital.url, header, { orderId: 'r1', user: 'alice', amount: 10 });
    expect(first).toEqual({ status: 200, body: { frozen: 10 } });
    expect(again).toEqual(first);
    expect(capital.accounts.calls).toEqual(['try:r1']);
    expect(capital.accounts.balances.get('alice')).toBe(90);
    const [branch] = await capital.records();
    expect(branch?.status).toBe('TRIED');
  });
});

describe('nested branches A -> B -> C', () => {
  async function chain() {
    const c = await start('c');
    const b = await start('b', {
      extra: {
        '/relay': async (tcc, body) => {
          const f = body as { orderId: string; amount: number; cAmount: number };
          await tcc.http(c.url).post('/freeze', { orderId: f.orderId, user: 'alice', amount: f.cAmount });
          return { relayed: true };
        },
      },
    });
    const { tcc, storage } = root();
    return { b, c, tcc, storage };
  }

  it('confirm reaches C through B', async () => {
    const { b, c, tcc, storage } = await chain();
    await tcc.transaction(async () => {
      await tcc.http(b.url).post('/relay', { orderId: 'n1', amount: 0, cAmount: 25 });
    });
    expect(c.accounts.calls).toEqual(['try:n1', 'confirm:n1']);
    expect(c.accounts.spent).toBe(25);
    const [bBranch] = await b.records();
    expect(bBranch).toMatchObject({
      status: 'CONFIRMED',
      participants: [{ kind: 'remote', endpoint: c.url }],
    });
    expect((await c.records())[0]).toMatchObject({ status: 'CONFIRMED', globalId: bBranch?.globalId });
    expect((await storage.list({})).records).toEqual([]);
  });

  it('cancel reaches C through B', async () => {
    const { b, c, tcc } = await chain();
    const failure = tcc.transaction(async () => {
      await tcc.http(b.url).post('/relay', { orderId: 'n2', amount: 0, cAmount: 25 });
      throw new Error('the order changed its mind');
    });
    await expect(failure).rejects.toThrow('changed its mind');
    expect(c.accounts.calls).toEqual(['try:n2', 'cancel:n2']);
    expect(c.accounts.balances.get('alice')).toBe(100);
    expect((await b.records()).map((r) => r.status)).toEqual(['CANCELLED']);
    expect((await c.records()).map((r) => r.status)).toEqual(['CANCELLED']);
  });
});

describe('timeouts', () => {
  it('a remote try that times out is cancelled once it has ended, never before', async () => {
    const capital = await start('capital');
    const { tcc, storage } = root();
    const failure = tcc.transaction(async () => {
      await tcc
        .http(capital.url, { timeoutMs: 100 })
        .post('/freeze', { orderId: 't1', user: 'alice', amount: 10, delayMs: 400 });
    });
    await expect(failure).rejects.toBeInstanceOf(RemoteTimeoutError);
    // The cancel waited for the slow try, then undid it.
    expect(capital.accounts.calls).toEqual(['try:t1', 'cancel:t1']);
    expect(capital.accounts.balances.get('alice')).toBe(100);
    expect((await storage.list({})).records).toEqual([]);
    expect((await capital.records()).map((r) => r.status)).toEqual(['CANCELLED']);
  });

  it("leaves no listener on the caller's own signal once its requests are done", async () => {
    const slow = () => new Promise((resolve) => setTimeout(resolve, 2_000, { slow: true }));
    const capital = await start('capital', { extra: { '/slow': slow } });
    const { tcc } = root();
    const shutdown = new AbortController();
    const client = tcc.http(capital.url, { timeoutMs: 5_000 });
    for (let i = 0; i < 30; i++)
      await client.post('/nothing', {}, { signal: shutdown.signal }).catch(() => {});
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    // Still honoured while a request runs: the abort ends it (the route answers after 2 s).
    const pending = client.post('/slow', {}, { signal: shutdown.signal });
    setTimeout(() => shutdown.abort(), 50);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCallError);
    expect(error).not.toBeInstanceOf(RemoteTimeoutError);
    expect(String((error as Error).cause)).toMatch(/abort/i);
  });

  it('a body that stops half way is cut off by the time limit too (RemoteTimeoutError)', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"held":');
      setTimeout(() => res.end('1}'), 1_000).unref();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { tcc } = root();
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Waiting for the whole body would have succeeded after a second.
      await expect(tcc.http(url, { timeoutMs: 100 }).post('/slow', {})).rejects.toBeInstanceOf(
        RemoteTimeoutError,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('with delayCancelOn, recovery cancels after the deadline', async () => {
    const capital = await start('capital');
    let now = Date.now();
    const storage = new MemoryStorage();
    const tcc = new Tcc({
      domain: 'order',
      storage,
      clock: { now: () => now },
      recovery: { recoverAfterMs: 0 },
    });
    const failure = tcc.transaction(
      async () => {
        await tcc
          .http(capital.url, { timeoutMs: 100 })
          .post('/freeze', { orderId: 't2', user: 'alice', amount: 10, delayMs: 300 });
      },
      { timeoutMs: 5_000, delayCancelOn: [RemoteTimeoutError] },
    );
    await expect(failure).rejects.toBeInstanceOf(RemoteTimeoutError);
    const [left] = (await storage.list({})).records;
    expect(left?.status).toBe('TRYING');
    expect(await tcc.recover(left!.xid)).toMatchObject({ outcome: 'waiting' });
    now += 6_000;
    expect(await tcc.recover(left!.xid)).toMatchObject({ outcome: 'cancelled' });
    expect(capital.accounts.calls).toEqual(['try:t2', 'cancel:t2']);
    expect(capital.accounts.balances.get('alice')).toBe(100);
  });

  it('a remote service that cannot be reached dooms the transaction and is cancelled by recovery later', async () => {
    const { tcc, storage } = root();
    const closed = await start('gone');
    await closed.close();
    const failure = tcc.transaction(() => tcc.http(closed.url).post('/freeze', {}));
    await expect(failure).rejects.toBeInstanceOf(RemoteCallError);
    // The cancel could not be sent either: the record waits for recovery.
    const [left] = (await storage.list({})).records;
    expect(left).toMatchObject({
      status: 'CANCELLING',
      participants: [{ kind: 'remote', status: 'TRYING' }],
    });
    expect(left?.lastError).toMatch(
      /RemoteCommandError: cancel sent to http:\/\/127\.0\.0\.1:\d+ failed: request failed \(ECONNREFUSED\)/,
    );
  });
});
