import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc } from '@tcc/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Accounts, command, contextHeader, type Freeze, origin, send, tryRequest } from './support.js';

let server: Server | undefined;
let tcc: Tcc | undefined;
afterEach(async () => {
  const open = server;
  server = undefined;
  if (open !== undefined) {
    open.closeAllConnections();
    await new Promise((resolve) => open.close(resolve));
  }
  await tcc?.stop();
  tcc = undefined;
});

async function body(req: IncomingMessage): Promise<Freeze> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Freeze;
}

/**
 * A capital service on the test's clock: `POST /freeze` freezes as a branch and, before it
 * answers, moves the clock to `answerAt`, as a handler that is still busy when the deadline passes.
 */
async function start(clock: { t: number }, answerAt: () => number) {
  const storage = new MemoryStorage();
  tcc = new Tcc({
    domain: 'capital',
    storage,
    clock: { now: () => clock.t },
    recovery: { recoverAfterMs: 0 },
  });
  const accounts = new Accounts({ alice: 100 });
  const freeze = tcc.compensable('accounts.freeze', {
    propagation: 'MANDATORY',
    try: (f: Freeze) => accounts.freeze(f.orderId, f.user, f.amount),
    confirm: (f: Freeze) => accounts.confirm(f.orderId),
    cancel: (f: Freeze) => accounts.cancel(f.orderId, f.user),
  });
  const handler = tcc.httpHandler();
  server = createServer((req, res) =>
    handler(req, res, async () => {
      const f = await body(req);
      await freeze(f);
      clock.t = answerAt();
      send(res, 200, { frozen: f.amount });
    }),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, storage, accounts };
}

describe('a branch try that enlisted in time but whose handler answers after the deadline', () => {
  it('is refused (409) and cancelled, never left TRIED', async () => {
    const clock = { t: Date.now() };
    const o = origin({ deadline: clock.t + 10_000 });
    const { url, storage, accounts } = await start(clock, () => o.deadline + 1);

    const answer = await tryRequest(url, contextHeader(o), { orderId: 'late', user: 'alice', amount: 30 });

    expect(answer).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    expect(accounts.calls).toEqual(['try:late', 'cancel:late']);
    expect(accounts.balances.get('alice')).toBe(100);
    expect(accounts.frozen.size).toBe(0);
    expect((await storage.list({})).records.map((r) => [r.xid, r.status])).toEqual([[o.xid, 'CANCELLED']]);
    // The root's confirm, had it decided to confirm, finds nothing to confirm.
    const confirm = await command(url, { action: 'confirm', globalId: o.globalId, xid: o.xid });
    expect(confirm.status).toBe(409);
    expect(accounts.calls).toEqual(['try:late', 'cancel:late']);
  });

  it('answered just before the deadline, it is TRIED (the control case)', async () => {
    const clock = { t: Date.now() };
    const o = origin({ deadline: clock.t + 10_000 });
    const { url, storage, accounts } = await start(clock, () => o.deadline - 1);

    const answer = await tryRequest(url, contextHeader(o), { orderId: 'on-time', user: 'alice', amount: 30 });

    expect(answer).toEqual({ status: 200, body: { frozen: 30 } });
    expect(accounts.calls).toEqual(['try:on-time']);
    expect((await storage.list({})).records.map((r) => [r.xid, r.status])).toEqual([[o.xid, 'TRIED']]);
  });
});
