import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfirmFailedError, MemoryStorage, Tcc } from '@tcc/core';
import { type BranchCommand, MAX_BATCH_COMMANDS, Signer, signCommand, signCommands } from '@tcc/core/http';
import { CountingStorage } from '@tcc/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { command, contextHeader, origin, SECRET, type Service, startService, tryRequest } from './support.js';

let capital: Service;
let order: Service;
/** `.tcc` requests the capital service has received. */
let commandRequests = 0;

beforeAll(async () => {
  [capital, order] = await Promise.all([
    startService('capital', { secret: SECRET }),
    startService('order', { secret: SECRET }),
  ]);
  // Enough for every transaction of this file.
  capital.accounts.balances.set('alice', 1_000_000);
  capital.server.on('request', (req) => {
    if (req.url === '/.tcc') commandRequests++;
  });
});
afterAll(() => Promise.all([capital.close(), order.close()]));

/** Store and business state, to show that a refused request changed nothing. */
async function state(): Promise<string> {
  return JSON.stringify({
    records: await capital.records(),
    balances: [...capital.accounts.balances],
    frozen: [...capital.accounts.frozen],
    calls: capital.accounts.calls,
  });
}

/** Two TRIED branches at the capital service, and confirms aimed at them. */
let batch: BranchCommand[];
let snapshot: string;

beforeEach(async () => {
  batch = [];
  for (let i = 0; i < 2; i++) {
    const o = origin();
    const body = { orderId: o.xid, user: 'alice', amount: 1 };
    const tried = await tryRequest(capital.url, contextHeader(o, SECRET, Date.now(), body), body);
    expect(tried.status).toBe(200);
    batch.push({ action: 'confirm', globalId: o.globalId, xid: o.xid });
  }
  snapshot = await state();
});

function signed(commands: readonly BranchCommand[], now = Date.now()): string {
  return signCommands(commands, new Signer(SECRET), now, 'capital');
}

describe('a root calling several services at once', () => {
  it('writes the remote participants of one turn in one write, each persisted before its request', async () => {
    const packets = await startService('packets', { secret: SECRET });
    const storage = new CountingStorage(new MemoryStorage());
    const tcc = new Tcc({ domain: 'order-fanout', storage, http: { secret: SECRET } });
    // What the root's log held when each try arrived.
    const seen: number[] = [];
    for (const service of [capital, packets]) {
      service.server.prependListener('request', (req) => {
        if (req.url === '/freeze')
          void storage.list({}).then((p) => seen.push(p.records[0]?.participants.length ?? 0));
      });
    }
    try {
      await tcc.transaction(async () => {
        await Promise.all([
          tcc
            .http(capital.url, { domain: 'capital' })
            .post('/freeze', { orderId: 'fan-1', user: 'alice', amount: 1 }),
          tcc
            .http(packets.url, { domain: 'packets' })
            .post('/freeze', { orderId: 'fan-1', user: 'alice', amount: 1 }),
        ]);
        // A call after the group's write: a write of its own.
        await tcc
          .http(capital.url, { domain: 'capital' })
          .post('/freeze', { orderId: 'fan-2', user: 'alice', amount: 1 });
      });
      expect(storage.log).toEqual(['create TRYING', 'update TRYING', 'update CONFIRMING', 'remove']);
      expect(seen).toEqual([2, 2, 3]);
      expect(packets.accounts.calls).toEqual(['try:fan-1', 'confirm:fan-1']);
      expect(capital.accounts.calls).toContain('confirm:fan-2');
    } finally {
      await Promise.all([tcc.stop(), packets.close()]);
    }
  });
});

describe('a batch of .tcc commands at the callee', () => {
  it('answers each command as it would alone, in order (the control case)', async () => {
    const unknown = { action: 'confirm' as const, globalId: 'g-none', xid: 'x-none' };
    const commands = [...batch, unknown];
    const answer = await command(capital.url, { commands }, { signature: signed(commands) });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([
      { status: 200, ok: true, detail: 'confirmed' },
      { status: 200, ok: true, detail: 'confirmed' },
      { status: 404, error: { code: 'TCC_BRANCH_NOT_FOUND', message: expect.stringContaining('x-none') } },
    ]);
    for (const c of batch) expect(capital.accounts.calls).toContain(`confirm:${c.xid}`);
    // Sent again: each is the no-op a repeated command is.
    const again = await command(capital.url, { commands: batch }, { signature: signed(batch) });
    expect(again.body.results).toEqual([
      { status: 200, ok: true, detail: 'already confirmed' },
      { status: 200, ok: true, detail: 'already confirmed' },
    ]);
  });

  it.each([
    ['unsigned', () => ({ signature: null })],
    ['signed with another secret', () => ({ secret: 'another-secret-of-enough-length' })],
    ['expired (signed 2 minutes ago)', () => ({ signature: signed(batch, Date.now() - 120_000) })],
    [
      'replayed with one xid changed',
      () => ({
        signature: signed(batch),
        body: { commands: [batch[0], { ...batch[1], xid: 'x-other' }] },
      }),
    ],
    [
      'replayed with one action changed',
      () => ({
        signature: signed(batch),
        body: { commands: [batch[0], { ...batch[1], action: 'cancel' }] },
      }),
    ],
    ['replayed reordered', () => ({ signature: signed(batch), body: { commands: [batch[1], batch[0]] } })],
    ['replayed with a command dropped', () => ({ signature: signed(batch), body: { commands: [batch[0]] } })],
    [
      "signed as a single command (another message's signature)",
      () => ({
        signature: signCommand(batch[0]!, new Signer(SECRET), Date.now(), 'capital'),
        body: { commands: [batch[0]] },
      }),
    ],
  ])('%s: 401 and nothing changes', async (_name, make) => {
    const made = make() as { body?: unknown; signature?: string | null; secret?: string };
    const { body, ...options } = made;
    const answer = await command(capital.url, body ?? { commands: batch }, {
      ...options,
      ...(options.signature === undefined && options.secret === undefined ? { secret: SECRET } : {}),
    });
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'TCC_UNAUTHORIZED' } } });
    expect(await state()).toBe(snapshot);
  });

  it.each([
    ['an empty list', () => ({ commands: [] }), 'commands must be an array of 1 to 64'],
    ['not a list', () => ({ commands: { 0: batch[0] } }), 'commands must be an array'],
    [
      `more than ${MAX_BATCH_COMMANDS} commands`,
      () => ({ commands: Array.from({ length: MAX_BATCH_COMMANDS + 1 }, () => batch[0]) }),
      'commands must be an array of 1 to 64',
    ],
    [
      'one good command and one without an xid',
      () => ({ commands: [batch[0], { action: 'confirm', globalId: 'g' }] }),
      'commands[1].xid must be a string',
    ],
    [
      'one good command and one that is not an object',
      () => ({ commands: [batch[0], 'confirm'] }),
      'commands[1]: expected an object',
    ],
    [
      'one good command and a malformed globalId',
      () => ({ commands: [batch[0], { ...batch[1], globalId: 'g/../x' }] }),
      'commands[1].globalId is malformed',
    ],
  ])('%s: 400 with a message, and not even the good commands run', async (_name, make, message) => {
    const body = make();
    const answer = await command(capital.url, body, { signature: null });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({
      code: 'TCC_BAD_REQUEST',
      message: expect.stringContaining(message),
    });
    expect(await state()).toBe(snapshot);
  });

  it('an unknown action in a signed batch: 400, and not even the good commands run', async () => {
    const commands = [batch[0]!, { ...batch[1]!, action: 'commit' as never }];
    const answer = await command(capital.url, { commands }, { signature: signed(commands) });
    expect(answer).toMatchObject({
      status: 400,
      body: {
        error: { code: 'TCC_BAD_REQUEST', message: expect.stringContaining('commands[1]: unknown action') },
      },
    });
    expect(await state()).toBe(snapshot);
  });
});

/**
 * Runs `n` transactions of the order service whose bodies (`body(i)`, the tries) end together,
 * so their commits and confirms fall in the same turns, and their commands in the same batches.
 */
async function gated(
  n: number,
  body: (i: number) => Promise<unknown>,
): Promise<PromiseSettledResult<void>[]> {
  let tried = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      order.tcc.transaction(async () => {
        try {
          await body(i);
        } finally {
          if (++tried === n) release();
        }
        await gate;
      }),
    ),
  );
}

/** Runs `fn` while the capital service's confirm of `orderId` throws `error`. */
async function withFailingConfirm<T>(orderId: string, error: Error, fn: () => Promise<T>): Promise<T> {
  const confirm = capital.accounts.confirm.bind(capital.accounts);
  capital.accounts.confirm = (id: string) => {
    if (id === orderId) throw error;
    confirm(id);
  };
  try {
    return await fn();
  } finally {
    capital.accounts.confirm = confirm;
  }
}

describe('the caller batches the commands of one turn', () => {
  it('confirms 40 concurrent transactions with fewer requests than commands, each on its own', async () => {
    const client = order.tcc.http(capital.url, { domain: 'capital' });
    const before = commandRequests;
    const results = await gated(40, (i) =>
      client.post('/freeze', { orderId: `batch-${i}`, user: 'alice', amount: 1 }),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    for (let i = 0; i < 40; i++) expect(capital.accounts.calls).toContain(`confirm:batch-${i}`);
    expect(commandRequests - before).toBeLessThanOrEqual(4);
    expect(commandRequests - before).toBeGreaterThan(0);
    expect(await order.records()).toEqual([]);
  });

  it('a confirm that fails in a batch fails its own transaction only', async () => {
    const client = order.tcc.http(capital.url, { domain: 'capital' });
    const results = await withFailingConfirm('fails-3', new Error('confirm of fails-3 refused'), () =>
      gated(8, (i) => client.post('/freeze', { orderId: `fails-${i}`, user: 'alice', amount: 1 })),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    const failure = (results[3] as PromiseRejectedResult).reason;
    expect(failure).toBeInstanceOf(ConfirmFailedError);
    expect(String(failure.cause?.message ?? failure.message)).toMatch(/500|TCC_BRANCH_FAILED|refused/);
  });

  it('cuts a long error message in a batch answer, so the other commands of the batch still succeed', async () => {
    const client = order.tcc.http(capital.url, { domain: 'capital' });
    const results = await withFailingConfirm('long-2', new Error(`refused: ${'x'.repeat(100_000)}`), () =>
      gated(6, (i) => client.post('/freeze', { orderId: `long-${i}`, user: 'alice', amount: 1 })),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    const message = String((results[2] as PromiseRejectedResult).reason.cause?.message);
    expect(message).toContain('refused: xxx');
    expect(message.length).toBeLessThan(2_000);
  });

  it('sends each command alone when a callee refuses the batch (413: a smaller maxBodyBytes; 400: a callee that does not take the batch form)', async () => {
    const small = await startService('capital-small', { secret: SECRET, maxBodyBytes: 300 });
    let requests = 0;
    small.server.on('request', (req) => {
      if (req.url === '/.tcc') requests++;
    });
    try {
      const client = order.tcc.http(small.url, { domain: 'capital-small' });
      const results = await gated(8, (i) =>
        client.post('/freeze', { orderId: `fallback-${i}`, user: 'alice', amount: 1 }),
      );
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      for (let i = 0; i < 8; i++) expect(small.accounts.calls).toContain(`confirm:fallback-${i}`);
      // At least one batch was refused (413), then its commands went one by one.
      expect(requests).toBeGreaterThan(8);
    } finally {
      await small.close();
    }
  });

  it('takes a batch answered with a success other than 200 and its results as failed, every command', async () => {
    // A gateway in front of the callee answering 204 to the .tcc request: no command is known done.
    const gateway = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        if (req.url === '/.tcc') res.writeHead(204).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":1}');
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    try {
      const client = order.tcc.http(`http://127.0.0.1:${(gateway.address() as AddressInfo).port}`, {
        domain: 'capital',
      });
      const results = await gated(3, (i) => client.post('/freeze', { orderId: `gw-${i}`, amount: 1 }));
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConfirmFailedError);
    } finally {
      gateway.closeAllConnections();
      gateway.close();
    }
  });

  it('splits a turn into requests that fit maxBodyBytes', async () => {
    // The callee's limit is the default 20,480; this caller packs no more than 300 bytes a request.
    const tcc = new Tcc({
      domain: 'order-small',
      storage: new MemoryStorage(),
      http: { secret: SECRET, maxBodyBytes: 300 },
    });
    try {
      const client = tcc.http(capital.url, { domain: 'capital' });
      const before = commandRequests;
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          tcc.transaction(() => client.post('/freeze', { orderId: `small-${i}`, user: 'alice', amount: 1 })),
        ),
      );
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      // About 105 bytes a command: two per request.
      expect(commandRequests - before).toBeGreaterThanOrEqual(6);
    } finally {
      await tcc.stop();
    }
  });
});
