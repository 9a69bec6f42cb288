import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc, type TransactionRecord } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/waits.js';
import {
  Accounts,
  command,
  contextHeader,
  type Freeze,
  origin,
  send,
  stoppedAfterEach,
  tryRequest,
} from './support.js';

// A branch's try holds a claim on its record while a participant's try runs. Without it, a
// cancel reaching another process of the same service (the root's try call timed out, so it
// cancelled) ran at once: an empty rollback, after which the try still running froze the funds
// for good. The model's counterexample `broken-unclaimed-try` (npm run verify) is that trace.

const { servers, runtimes } = stoppedAfterEach();

async function body(req: IncomingMessage): Promise<Freeze> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Freeze;
}

/** A gate a participant's try waits at, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * One process of the capital service on the shared `storage` and `accounts` (as two processes
 * share one database): `POST /freeze` freezes as a branch, its try waiting at `hold` first.
 */
async function process(
  storage: MemoryStorage,
  accounts: Accounts,
  hold: Promise<void>,
  options: { clock?: { now(): number }; recoverAfterMs?: number } = {},
) {
  const tcc = new Tcc({
    domain: 'capital',
    storage,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    recovery: { recoverAfterMs: options.recoverAfterMs ?? 30_000 },
  });
  runtimes.push(tcc);
  const freeze = tcc.compensable('accounts.freeze', {
    propagation: 'MANDATORY',
    try: async (f: Freeze) => {
      await hold;
      accounts.freeze(f.orderId, f.user, f.amount);
    },
    confirm: (f: Freeze) => accounts.confirm(f.orderId),
    cancel: (f: Freeze) => accounts.cancel(f.orderId, f.user),
  });
  const handler = tcc.httpHandler();
  const server = createServer((req, res) =>
    handler(req, res, async () => {
      const f = await body(req);
      try {
        await freeze(f);
        send(res, 200, { frozen: f.amount });
      } catch (error) {
        send(res, 409, { error: { code: (error as { code?: string }).code, message: String(error) } });
      }
    }),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { tcc, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const stored = async (storage: MemoryStorage, xid: string): Promise<TransactionRecord | undefined> =>
  (await storage.list({})).records.find((r) => r.xid === xid);

describe("a cancel that reaches another process while the branch's try still runs", () => {
  it('is answered busy until the try has ended, then undoes what the try did', async () => {
    const storage = new MemoryStorage();
    const accounts = new Accounts({ alice: 100 });
    const held = gate();
    const first = await process(storage, accounts, held.opened);
    const second = await process(storage, accounts, held.opened);
    const o = origin();
    const f = { orderId: 'o1', user: 'alice', amount: 30 };

    const trying = tryRequest(first.url, contextHeader(o), f);
    await eventually(
      async () => (await stored(storage, o.xid)) !== undefined,
      'the branch record is written',
    );
    const during = await stored(storage, o.xid);
    expect(during).toMatchObject({ status: 'TRYING', claim: { owner: expect.any(String) } });

    const early = await command(second.url, { action: 'cancel', globalId: o.globalId, xid: o.xid });
    expect(early).toMatchObject({ status: 409, body: { error: { code: 'TCC_BUSY' } } });
    // Nothing was cancelled, and no tombstone stands in the try's way.
    expect(accounts.calls).toEqual([]);
    expect(await stored(storage, o.xid)).toMatchObject({ status: 'TRYING', version: during!.version });

    held.open();
    expect(await trying).toEqual({ status: 200, body: { frozen: 30 } });
    const tried = await stored(storage, o.xid);
    expect(tried?.status).toBe('TRIED');
    // Released by the TRIED write: the root's command need not wait for it to lapse.
    expect(tried?.claim).toBeUndefined();

    const cancel = await command(second.url, { action: 'cancel', globalId: o.globalId, xid: o.xid });
    expect(cancel.status).toBe(200);
    expect(accounts.calls).toEqual(['try:o1', 'cancel:o1']);
    expect(accounts.balances.get('alice')).toBe(100);
    expect(accounts.frozen.size).toBe(0);
    expect((await stored(storage, o.xid))?.status).toBe('CANCELLED');
  });

  it('goes ahead once the claim of a try whose process died has lapsed', async () => {
    const storage = new MemoryStorage();
    const accounts = new Accounts({ alice: 100 });
    const clock = { t: Date.now(), now: () => clock.t };
    // The first process stops in its try for good (as if killed): its try never goes on, and its
    // timer would renew the claim only every 200 s, far beyond this test.
    const never = gate();
    const first = await process(storage, accounts, never.opened, { clock, recoverAfterMs: 600_000 });
    const second = await process(storage, accounts, never.opened, { clock, recoverAfterMs: 600_000 });
    const o = origin({ deadline: clock.t + 3_600_000 });

    const trying = tryRequest(first.url, contextHeader(o, undefined, clock.t), {
      orderId: 'o2',
      user: 'alice',
      amount: 30,
    }).catch(() => 'cut off');
    await eventually(
      async () => (await stored(storage, o.xid)) !== undefined,
      'the branch record is written',
    );
    const during = await stored(storage, o.xid);
    expect(await command(second.url, { action: 'cancel', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 409,
      body: { error: { code: 'TCC_BUSY' } },
    });
    expect((await stored(storage, o.xid))?.version).toBe(during!.version);

    clock.t = during!.claim!.until + 1;
    const cancel = await command(second.url, { action: 'cancel', globalId: o.globalId, xid: o.xid });
    expect(cancel.status).toBe(200);
    expect((await stored(storage, o.xid))?.status).toBe('CANCELLED');
    // An empty rollback: the try had frozen nothing.
    expect(accounts.calls).toEqual(['cancel:o2']);
    expect(accounts.total()).toBe(100);
    for (const server of servers) server.closeAllConnections();
    expect(await trying).toBe('cut off');
  });
});
