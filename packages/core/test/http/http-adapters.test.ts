import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc } from '@tcc/core';
import { tccExpress, tccFastify } from '@tcc/core/http';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { Accounts, command, contextHeader, type Freeze, origin, SECRET, tryRequest } from './support.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function callee() {
  const storage = new MemoryStorage();
  const tcc = new Tcc({ domain: 'capital', storage, http: { secret: SECRET } });
  const accounts = new Accounts({ alice: 100 });
  const freeze = tcc.compensable('accounts.freeze', {
    propagation: 'MANDATORY',
    try: async (f: Freeze) => {
      // An await before the try: the branch must survive the framework's async hops.
      await new Promise((r) => setImmediate(r));
      accounts.freeze(f.orderId, f.user, f.amount);
    },
    confirm: (f: Freeze) => accounts.confirm(f.orderId),
    cancel: (f: Freeze) => accounts.cancel(f.orderId, f.user),
  });
  return { storage, tcc, accounts, freeze };
}

function caller() {
  return new Tcc({ domain: 'order', storage: new MemoryStorage(), http: { secret: SECRET } });
}

describe.each([
  [
    'Express',
    async (c: ReturnType<typeof callee>) => {
      const app = express();
      // Before the body parser: the TCC endpoint reads (and limits) its own body.
      app.use(tccExpress(c.tcc));
      app.use(express.json());
      app.post('/freeze', async (req, res) => {
        try {
          await c.freeze(req.body as Freeze);
          res.json({ frozen: (req.body as Freeze).amount });
        } catch (error) {
          res.status(409).json({
            error: { code: (error as { code?: string }).code ?? 'REFUSED', message: String(error) },
          });
        }
      });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      closers.push(
        () =>
          new Promise((resolve) => {
            server.closeAllConnections();
            server.close(resolve);
          }),
      );
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  ],
  [
    'Fastify',
    async (c: ReturnType<typeof callee>) => {
      const app = Fastify();
      await app.register(tccFastify(c.tcc));
      app.post('/freeze', async (request, reply) => {
        try {
          await c.freeze(request.body as Freeze);
          return { frozen: (request.body as Freeze).amount };
        } catch (error) {
          return reply.code(409).send({
            error: { code: (error as { code?: string }).code ?? 'REFUSED', message: String(error) },
          });
        }
      });
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      closers.push(() => app.close());
      return address;
    },
  ],
])('%s adapter', (_name, serve) => {
  it('runs a route as a branch (body parsed by the framework), confirmed through <base>/.tcc', async () => {
    const c = callee();
    const url = await serve(c);
    const tcc = caller();
    await tcc.transaction(() =>
      tcc.http(url, { domain: 'capital' }).post('/freeze', { orderId: 'e1', user: 'alice', amount: 30 }),
    );
    expect(c.accounts.calls).toEqual(['try:e1', 'confirm:e1']);
    expect((await c.storage.list({})).records.map((r) => r.status)).toEqual(['CONFIRMED']);
  });

  it('cancels, refuses a late try, and refuses an unsigned or malformed command', async () => {
    const c = callee();
    const url = await serve(c);
    const tcc = caller();
    await expect(
      tcc.transaction(async () => {
        await tcc
          .http(url, { domain: 'capital' })
          .post('/freeze', { orderId: 'e2', user: 'alice', amount: 30 });
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(c.accounts.calls).toEqual(['try:e2', 'cancel:e2']);

    const o = origin();
    expect(
      (await command(url, { action: 'cancel', globalId: o.globalId, xid: o.xid }, { secret: SECRET })).status,
    ).toBe(200);
    const lateBody = { orderId: 'e3', user: 'alice', amount: 1 };
    const late = await tryRequest(url, contextHeader(o, SECRET, Date.now(), lateBody), lateBody);
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    const before = JSON.stringify((await c.storage.list({})).records);
    expect((await command(url, { action: 'cancel', globalId: 'g', xid: 'x' })).status).toBe(401);
    expect((await command(url, undefined, { raw: '{nope', signature: null })).status).toBe(400);
    expect(JSON.stringify((await c.storage.list({})).records)).toBe(before);
    expect(c.accounts.calls).toEqual(['try:e2', 'cancel:e2']);
  });
});
