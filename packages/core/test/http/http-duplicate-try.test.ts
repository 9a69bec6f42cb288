import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { contextHeader, origin, send, stoppedAfterEach } from './support.js';

// A caller that timed out and sent its try again while the first is still running: the
// duplicate must get the first try's answer, not an error that would make the root cancel an
// order whose try succeeded. Here the two requests reach two processes of the service (two
// runtimes on one log), so only the log can tell them apart.

const { servers, runtimes } = stoppedAfterEach();

async function eventually(what: string, condition: () => boolean): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 20_000) throw new Error(`${what}: not within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Two processes of `stock` on one log; `POST /reserve` reserves as a branch. */
async function twoProcesses() {
  const storage = new MemoryStorage();
  const tries: string[] = [];
  const state: { gate: Promise<void> | undefined; failNext: boolean } = { gate: undefined, failNext: false };
  const urls: string[] = [];
  for (let i = 0; i < 2; i++) {
    const tcc = new Tcc({ domain: 'stock', storage });
    runtimes.push(tcc);
    const reserve = tcc.compensable('stock.reserve', {
      propagation: 'MANDATORY',
      try: async (sku: string) => {
        tries.push(`process ${i}: ${sku}`);
        await state.gate;
        if (state.failNext) throw new Error('out of stock');
      },
      confirm: async () => {},
      cancel: async () => {},
    });
    const handle = tcc.httpHandler();
    const server = createServer((req, res) =>
      handle(req, res, () => {
        void reserve('book').then(
          () => send(res, 200, { reserved: 'book', by: i }),
          (error: Error) => send(res, 409, { error: { message: error.message } }),
        );
      }),
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return { storage, tries, state, urls };
}

async function tryOn(url: string, header: string) {
  const response = await fetch(`${url}/reserve`, { method: 'POST', headers: { 'tcc-context': header } });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('a try sent again while the first still runs in another process', () => {
  it('waits for the first and gets its answer; the try runs once', async () => {
    const s = await twoProcesses();
    let release!: () => void;
    s.state.gate = new Promise<void>((resolve) => (release = resolve));
    const o = origin();
    const header = contextHeader(o);
    const first = tryOn(s.urls[0]!, header);
    await eventually('the first try runs', () => s.tries.length === 1);
    const again = tryOn(s.urls[1]!, header);
    // The duplicate is held by the log (its record is there, TRYING), however long that is.
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    expect(await first).toEqual({ status: 200, body: { reserved: 'book', by: 0 } });
    expect(await again).toEqual({ status: 200, body: { reserved: 'book', by: 0 } });
    expect(s.tries).toEqual(['process 0: book']);
    expect(await s.storage.get(o.xid)).toMatchObject({ status: 'TRIED' });
  });

  it('gets a refusal when the first one failed, and the try does not run again', async () => {
    const s = await twoProcesses();
    let release!: () => void;
    s.state.gate = new Promise<void>((resolve) => (release = resolve));
    s.state.failNext = true;
    const header = contextHeader(origin());
    const first = tryOn(s.urls[0]!, header);
    await eventually('the first try runs', () => s.tries.length === 1);
    const again = tryOn(s.urls[1]!, header);
    release();
    expect((await first).status).toBe(409);
    expect(await again).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    expect(s.tries).toEqual(['process 0: book']);
  });

  it('is refused once the deadline passes while the first still runs', async () => {
    const s = await twoProcesses();
    let release!: () => void;
    s.state.gate = new Promise<void>((resolve) => (release = resolve));
    const o = origin({ deadline: Date.now() + 1_000 });
    const header = contextHeader(o);
    const first = tryOn(s.urls[0]!, header);
    await eventually('the first try runs', () => s.tries.length === 1);
    const again = await tryOn(s.urls[1]!, header);
    expect(again).toMatchObject({
      status: 409,
      body: {
        error: {
          code: 'TCC_TRANSACTION_HANGING',
          message: expect.stringContaining('did not end before the deadline'),
        },
      },
    });
    release();
    // The first ended after the deadline too: refused, and cancelled.
    expect((await first).status).toBe(409);
    expect(s.tries).toEqual(['process 0: book']);
  });
});
