import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidOptionError, MemoryStorage, Tcc } from '@tcc/core';
import { bodyDigest, CONTEXT_HEADER, DIGEST_HEADER, tccExpress } from '@tcc/core/http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  command,
  contextHeader,
  type Freeze,
  origin,
  SECRET,
  type Service,
  startService,
  tryRequest,
} from './support.js';

// With one shared secret on every service, a signature must say what it is for: the target
// service, the method and path, and the body. Otherwise a header captured on the way to one
// service runs a try elsewhere, or with another amount.

let capital: Service;
let stock: Service;

beforeAll(async () => {
  [capital, stock] = await Promise.all([
    startService('capital', { secret: SECRET }),
    startService('stock', { secret: SECRET }),
  ]);
});
afterAll(async () => {
  await Promise.all([capital.close(), stock.close()]);
});

async function state(s: Service): Promise<string> {
  return JSON.stringify({
    records: await s.records(),
    calls: s.accounts.calls,
    frozen: [...s.accounts.frozen],
  });
}

/** Sends a try with its own header and digest (what a proxy or attacker could change). */
async function send(
  url: string,
  path: string,
  method: string,
  header: string,
  body: string,
  digest?: string,
) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      [CONTEXT_HEADER]: header,
      ...(digest === undefined ? {} : { [DIGEST_HEADER]: digest }),
    },
    body,
  });
  return {
    status: response.status,
    body: (await response.json()) as { error?: { code?: string; message?: string } },
  };
}

describe('a signed try is bound to its target, method, path and body', () => {
  const body: Freeze = { orderId: 'b-1', user: 'alice', amount: 10 };

  it('the genuine request is accepted (the control case)', async () => {
    const o = origin();
    expect((await tryRequest(capital.url, contextHeader(o, SECRET, Date.now(), body), body)).status).toBe(
      200,
    );
  });

  it('a header for capital replayed to stock with another body: 401, nothing runs or is written at stock', async () => {
    const before = await state(stock);
    const header = contextHeader(origin(), SECRET, Date.now(), body);
    const forged: Freeze = { ...body, amount: 500 };
    const answer = await tryRequest(stock.url, header, forged);
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    // Even with the original body, the header is not for stock.
    expect((await tryRequest(stock.url, header, body)).status).toBe(401);
    expect(await state(stock)).toBe(before);
  });

  it('a changed body under the genuine header and digest: 401, the try does not run', async () => {
    const before = await state(capital);
    const header = contextHeader(origin(), SECRET, Date.now(), body);
    const answer = await send(
      capital.url,
      '/freeze',
      'POST',
      header,
      JSON.stringify({ ...body, amount: 90 }),
      bodyDigest(JSON.stringify(body)),
    );
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(answer.body.error?.message).toContain('does not match its signed digest');
    expect(await state(capital)).toBe(before);
  });

  it('a changed digest, path or method, or no digest at all: 401, nothing runs', async () => {
    const before = await state(capital);
    const text = JSON.stringify(body);
    const header = contextHeader(origin(), SECRET, Date.now(), body);
    const forgedDigest = bodyDigest('{"amount":90}');
    for (const [path, method, digest] of [
      ['/freeze', 'POST', forgedDigest],
      ['/freeze?admin=1', 'POST', bodyDigest(text)],
      ['/freeze', 'PUT', bodyDigest(text)],
      ['/freeze', 'POST', undefined],
    ] as const) {
      const answer = await send(capital.url, path, method, header, text, digest);
      expect(answer, `${method} ${path} ${digest ?? 'no digest'}`).toMatchObject({
        status: 401,
        body: { error: { code: 'TCC_UNAUTHORIZED' } },
      });
    }
    expect(await state(capital)).toBe(before);
  });
});

describe('a signed .tcc command is bound to its target', () => {
  it('a cancel signed for capital, replayed to stock: 401, no tombstone there', async () => {
    const o = origin();
    const cancel = { action: 'cancel', globalId: o.globalId, xid: o.xid };
    const before = await state(stock);
    expect(await command(stock.url, cancel, { secret: SECRET, domain: 'capital' })).toMatchObject({
      status: 401,
    });
    expect(await stock.storage.get(o.xid)).toBeUndefined();
    expect(await state(stock)).toBe(before);
    // The same command signed for stock is an empty rollback there (the control case).
    expect(await command(stock.url, cancel, { secret: SECRET, domain: 'stock' })).toMatchObject({
      status: 200,
    });
    expect(await stock.storage.get(o.xid)).toMatchObject({ status: 'CANCELLED' });
  });
});

describe('the caller names the service it calls', () => {
  it('tcc.http without a domain is refused when a secret is set, naming the URL', () => {
    const tcc = new Tcc({ domain: 'order', storage: new MemoryStorage(), http: { secret: SECRET } });
    expect(() => tcc.http('http://127.0.0.1:4001')).toThrow(InvalidOptionError);
    expect(() => tcc.http('http://127.0.0.1:4001')).toThrow(
      'tcc.http("http://127.0.0.1:4001"): options.domain is required when http.secret is set',
    );
    expect(() => tcc.http('http://127.0.0.1:4001', { domain: 'no spaces' })).toThrow(
      'tcc.http: domain must be a service\'s domain name, got "no spaces"',
    );
  });

  it('a root signs for the domain it names: the right service runs it, another one refuses', async () => {
    const root = new Tcc({ domain: 'order', storage: new MemoryStorage(), http: { secret: SECRET } });
    await root.transaction(() =>
      root
        .http(capital.url, { domain: 'capital' })
        .post('/freeze', { orderId: 'r-1', user: 'bob', amount: 5 }),
    );
    expect(capital.accounts.calls).toContain('confirm:r-1');
    const wrong = root.transaction(() =>
      root.http(stock.url, { domain: 'capital' }).post('/freeze', { orderId: 'r-2', user: 'bob', amount: 5 }),
    );
    await expect(wrong).rejects.toMatchObject({ code: 'TCC_REMOTE_CALL_FAILED', status: 401 });
    expect(stock.accounts.calls).not.toContain('try:r-2');
    await root.stop();
  });
});

describe('where the body is read', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('a body parser mounted before the TCC middleware: 401 saying so, the try does not run', async () => {
    const tcc = new Tcc({ domain: 'capital', storage: new MemoryStorage(), http: { secret: SECRET } });
    const calls: string[] = [];
    const hold = tcc.compensable('capital.hold', {
      propagation: 'MANDATORY',
      try: (f: Freeze) => void calls.push(`try:${f.orderId}`),
      confirm: () => {},
      cancel: () => {},
    });
    const app = express();
    app.use(express.json());
    app.use(tccExpress(tcc));
    app.post('/freeze', async (req, res) => {
      await hold(req.body as Freeze);
      res.json({ ok: true });
    });
    const url = await listen(app);
    const body: Freeze = { orderId: 'x-1', user: 'alice', amount: 1 };
    const answer = await tryRequest(url, contextHeader(origin(), SECRET, Date.now(), body), body);
    expect(answer).toMatchObject({ status: 401 });
    expect(answer.body.error.message).toContain('mount the TCC middleware before any body parser');
    expect(calls).toEqual([]);
  });

  it('a route that calls its participant before reading the body: the body is read and checked first', async () => {
    const tcc = new Tcc({ domain: 'capital', storage: new MemoryStorage(), http: { secret: SECRET } });
    const calls: string[] = [];
    const hold = tcc.compensable('capital.hold', {
      propagation: 'MANDATORY',
      try: (id: string) => void calls.push(`try:${id}`),
      confirm: () => {},
      cancel: () => {},
    });
    const handle = tcc.httpHandler();
    const url = await listen((req, res) =>
      handle(req, res, () => {
        void hold(new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '?').then(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
          (error: Error) =>
            res
              .writeHead(400, { 'content-type': 'application/json' })
              .end(JSON.stringify({ error: { message: error.message } })),
        );
      }),
    );
    const text = JSON.stringify({ note: 'unread by the route' });
    const genuine = contextHeader(origin(), SECRET, Date.now(), JSON.parse(text), {
      domain: 'capital',
      path: '/hold?id=a',
    });
    expect((await send(url, '/hold?id=a', 'POST', genuine, text, bodyDigest(text))).status).toBe(200);
    const forged = contextHeader(origin(), SECRET, Date.now(), JSON.parse(text), {
      domain: 'capital',
      path: '/hold?id=b',
    });
    const answer = await send(url, '/hold?id=b', 'POST', forged, '{"note":"changed"}', bodyDigest(text));
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(calls).toEqual(['try:a']);
    await tcc.stop();
  });
});
