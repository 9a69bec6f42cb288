import { InvalidOptionError, MemoryStorage, Tcc } from '@tcc/core';
import { afterEach, describe, expect, it } from 'vitest';
import { command, contextHeader, origin, type Service, startService, tryRequest } from './support.js';

// The context header's version 2 (the parent a branch asks for its outcome), the bounds of
// its times, the busy answer of a branch another driver holds, and the options that say where
// outcome queries go.

const services: Service[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
});

async function capital(): Promise<Service> {
  const s = await startService('capital');
  services.push(s);
  return s;
}

const freeze = { orderId: 'o-1', user: 'alice', amount: 10 };

describe('tcc-context version 2', () => {
  it('keeps the parent in the branch record: its domain, its xid (the globalId when empty) and its URL', async () => {
    const s = await capital();
    const o = origin();
    const header = contextHeader({
      ...o,
      parent: { domain: 'order', xid: o.globalId, endpoint: 'http://order.internal:4000/api' },
    });
    // The root's own xid is not repeated, and the URL travels URI-encoded.
    expect(header.split(';').slice(5)).toEqual(['order', '', 'http%3A%2F%2Forder.internal%3A4000%2Fapi']);
    expect((await tryRequest(s.url, header, freeze)).status).toBe(200);
    expect((await s.records())[0]).toMatchObject({
      parent: { domain: 'order', xid: o.globalId, endpoint: 'http://order.internal:4000/api' },
    });
  });

  for (const [label, mutate, message] of [
    [
      'a version 1 header',
      (h: string[]) => ['1', ...h.slice(1, 5)],
      'unsupported version "1" (this release reads 2)',
    ],
    [
      'a deadline of 16 digits',
      (h: string[]) => h.map((f, i) => (i === 4 ? '9999999999999999' : f)),
      'malformed deadline',
    ],
    [
      'a parent endpoint that is not a URL',
      (h: string[]) => h.map((f, i) => (i === 7 ? 'not%20a%20url' : f)),
      'malformed parent endpoint',
    ],
    [
      'a parent endpoint that is not http',
      (h: string[]) => h.map((f, i) => (i === 7 ? 'ftp%3A%2F%2Fx' : f)),
      'parent endpoint must be http or https',
    ],
    [
      'a malformed parent domain',
      (h: string[]) => h.map((f, i) => (i === 5 ? '-x' : f)),
      'malformed parent domain',
    ],
    [
      'a malformed parent xid',
      (h: string[]) => h.map((f, i) => (i === 6 ? 'a b' : f)),
      'malformed parent xid',
    ],
  ] as const) {
    it(`refuses ${label} with 400 naming it, and writes nothing`, async () => {
      const s = await capital();
      const parts = contextHeader(origin()).split(';');
      const answer = await tryRequest(s.url, mutate(parts).join(';'), freeze);
      expect(answer).toMatchObject({ status: 400, body: { error: { code: 'TCC_BAD_REQUEST' } } });
      expect(answer.body.error.message).toContain(message);
      expect(await s.records()).toEqual([]);
      expect(s.accounts.calls).toEqual([]);
    });
  }
});

describe('a command for a branch another driver holds', () => {
  async function claimed(s: Service) {
    const o = origin();
    expect((await tryRequest(s.url, contextHeader(o), freeze)).status).toBe(200);
    const [record] = await s.records();
    // Another process of the service is running its confirm: its claim is live for a minute.
    await s.storage.update(
      {
        ...record!,
        status: 'CONFIRMING',
        version: record!.version + 1,
        claim: { owner: 'host/99/abcdef#1', until: Date.now() + 60_000 },
      },
      record!.version,
    );
    return o;
  }

  it('answers 409 TCC_BUSY with Retry-After and runs nothing', async () => {
    const s = await capital();
    const o = await claimed(s);
    const response = await fetch(`${s.url}/.tcc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'confirm', globalId: o.globalId, xid: o.xid }),
    });
    expect(response.status).toBe(409);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(await response.json()).toMatchObject({
      error: { code: 'TCC_BUSY', message: expect.stringContaining('host/99/abcdef#1') },
      retryAfterMs: expect.any(Number),
    });
    expect(s.accounts.calls).toEqual(['try:o-1']);
  });

  it('answers busy for that command alone inside a batch', async () => {
    const s = await capital();
    const o = await claimed(s);
    const answer = await command(s.url, {
      commands: [
        { action: 'confirm', globalId: o.globalId, xid: o.xid },
        { action: 'cancel', globalId: 'g-other', xid: 'x-other' },
      ],
    });
    expect(answer).toMatchObject({
      status: 200,
      body: {
        results: [
          { status: 409, error: { code: 'TCC_BUSY' }, retryAfterMs: expect.any(Number) },
          { status: 200, ok: true },
        ],
      },
    });
  });
});

describe('http.url and http.peers', () => {
  for (const [label, http, message] of [
    [
      'a relative url',
      { url: '/tcc' },
      'new Tcc: http.url must be an absolute http or https URL, got "/tcc"',
    ],
    ['a non-http url', { url: 'ftp://order' }, 'got "ftp://order"'],
    [
      'peers that are not an object',
      { peers: 'order' },
      'new Tcc: http.peers must be an object of domain: URL, got "order"',
    ],
    [
      'a peer that is not a URL',
      { peers: { order: 42 } },
      'new Tcc: http.peers.order must be an absolute http or https URL, got 42',
    ],
  ] as const) {
    it(`refuses ${label}, naming it`, () => {
      const build = () => new Tcc({ domain: 'd', storage: new MemoryStorage(), http: http as never });
      expect(build).toThrow(InvalidOptionError);
      expect(build).toThrow(message);
    });
  }
});
