import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc, type TransactionRecord } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { command, contextHeader, origin, send, stoppedAfterEach } from './support.js';

/** A MemoryStorage that counts its writes and reads, and can be told to fail the next `complete`. */
class CountingStorage extends MemoryStorage {
  readonly writes: string[] = [];
  reads = 0;
  failNextComplete = false;

  override get(xid: string): Promise<TransactionRecord | undefined> {
    this.reads++;
    return super.get(xid);
  }

  override create(record: TransactionRecord): Promise<void> {
    this.writes.push(`create ${record.status}`);
    return super.create(record);
  }

  override update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.writes.push(`update ${record.status}`);
    return super.update(record, expectedVersion);
  }

  override complete(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.writes.push(`complete ${record.status}`);
    if (this.failNextComplete) {
      this.failNextComplete = false;
      return Promise.reject(new Error('the process died before its tombstone'));
    }
    return super.complete(record, expectedVersion);
  }
}

interface Branchy {
  readonly url: string;
  readonly storage: CountingStorage;
  readonly calls: string[];
  /** Confirms of `b` that fail before one succeeds. */
  failConfirmsOfB: number;
  /** The first try waits for this before it returns. */
  tryGate: Promise<void> | undefined;
  /** Requests the server has received. */
  requests: number;
}

const { servers } = stoppedAfterEach();

/**
 * A service whose `POST /two` runs two compensable participants (`a`, `b`) in its branch, and
 * `POST /none` enlists nothing.
 */
async function startBranchy(
  clock: { now(): number } = { now: Date.now },
  storage = new CountingStorage(),
): Promise<Branchy> {
  const tcc = new Tcc({ domain: 'branchy', storage, clock, recovery: { recoverAfterMs: 0 } });
  const state: Branchy = {
    url: '',
    storage,
    calls: [],
    failConfirmsOfB: 0,
    tryGate: undefined,
    requests: 0,
  };
  const participant = (name: string) =>
    tcc.compensable(`branchy.${name}`, {
      propagation: 'MANDATORY',
      try: async (id: string) => {
        state.calls.push(`try ${name} ${id}`);
        if (name === 'a' && state.tryGate !== undefined) await state.tryGate;
      },
      confirm: (id: string) => {
        if (name === 'b' && state.failConfirmsOfB > 0) {
          state.failConfirmsOfB--;
          throw new Error('b cannot confirm yet');
        }
        state.calls.push(`confirm ${name} ${id}`);
      },
      cancel: (id: string) => state.calls.push(`cancel ${name} ${id}`),
    });
  const a = participant('a');
  const b = participant('b');
  const handler = tcc.httpHandler();
  const server = createServer((req, res) => {
    state.requests++;
    handler(req, res, () => {
      void (async () => {
        for await (const _ of req);
        try {
          if (req.url === '/two') {
            await a('o');
            await b('o');
          }
          send(res, 200, { ok: req.url });
        } catch (error) {
          send(res, 400, { error: { code: (error as { code?: string }).code, message: String(error) } });
        }
      })();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

/** Polls `condition` until it holds; fails after a bound no healthy run comes near. */
async function eventually(condition: () => boolean, boundMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > boundMs) throw new Error(`condition not met within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function tryOn(url: string, path: string, header: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'tcc-context': header } });
  return { status: response.status, body: await response.json() };
}

describe('writes of a remote branch', () => {
  it('a confirmed branch with two participants: create (with the first), enlist, TRIED, CONFIRMING (its claim), CONFIRMED', async () => {
    const s = await startBranchy();
    const o = origin();
    expect((await tryOn(s.url, '/two', contextHeader(o))).status).toBe(200);
    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
    });
    // k participants: k enlist writes (the first creates), TRIED, the command's claim and the
    // tombstone; no TRYING-only create before the handler.
    expect(s.storage.writes).toEqual([
      'create TRYING',
      'update TRYING',
      'update TRIED',
      'update CONFIRMING',
      'complete CONFIRMED',
    ]);
    expect(s.calls).toEqual(['try a o', 'try b o', 'confirm a o', 'confirm b o']);
  });

  it('a branch that enlists nobody is created TRIED in one write; its confirm and a repeated try work', async () => {
    const s = await startBranchy();
    const o = origin();
    const first = await tryOn(s.url, '/none', contextHeader(o));
    expect(first).toEqual({ status: 200, body: { ok: '/none' } });
    expect(s.storage.writes).toEqual(['create TRIED']);
    expect(await tryOn(s.url, '/none', contextHeader(o))).toEqual(first);
    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
      body: { detail: 'confirmed' },
    });
    // The repeated try's create found the first one's record, and answered with its reply.
    expect(s.storage.writes).toEqual([
      'create TRIED',
      'create TRIED',
      'update CONFIRMING',
      'complete CONFIRMED',
    ]);
  });

  it('a confirm that fails part way writes CONFIRMING with its progress; the retry does not confirm a twice', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    s.failConfirmsOfB = 1;
    const confirm = { action: 'confirm', globalId: o.globalId, xid: o.xid };
    expect((await command(s.url, confirm)).status).toBe(500);
    const [kept] = (await s.storage.list({})).records;
    expect(kept).toMatchObject({
      status: 'CONFIRMING',
      participants: [{ status: 'CONFIRMED' }, { status: 'TRYING' }],
    });
    // A cancel now would contradict what is half done: refused.
    expect((await command(s.url, { ...confirm, action: 'cancel' })).status).toBe(409);
    expect(await command(s.url, confirm)).toMatchObject({ status: 200, body: { detail: 'confirmed' } });
    expect(s.calls).toEqual(['try a o', 'try b o', 'confirm a o', 'confirm b o']);
  });

  it('a crash between the confirms and the tombstone leaves CONFIRMING; the root’s retry confirms again', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    s.storage.failNextComplete = true;
    const confirm = { action: 'confirm', globalId: o.globalId, xid: o.xid };
    expect((await command(s.url, confirm)).status).toBe(500);
    // Its claim lapses at once here (recoverAfterMs 0); by default the retry waits for that.
    expect((await s.storage.list({})).records[0]?.status).toBe('CONFIRMING');
    expect(await command(s.url, confirm)).toMatchObject({ status: 200, body: { detail: 'confirmed' } });
    expect((await s.storage.list({})).records[0]?.status).toBe('CONFIRMED');
    // The confirms ran again: they are idempotent (DESIGN.md §4).
    expect(s.calls.filter((c) => c.startsWith('confirm'))).toEqual([
      'confirm a o',
      'confirm b o',
      'confirm a o',
      'confirm b o',
    ]);
  });

  it('confirms sent twice at once run the participants’ confirms once', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    const confirm = { action: 'confirm', globalId: o.globalId, xid: o.xid };
    const answers = await Promise.all([command(s.url, confirm), command(s.url, confirm)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(s.calls.filter((c) => c.startsWith('confirm'))).toEqual(['confirm a o', 'confirm b o']);
  });

  it('a cancel of a TRIED branch writes CANCELLING (its claim), then cancels in reverse order', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    expect((await command(s.url, { action: 'cancel', globalId: o.globalId, xid: o.xid })).status).toBe(200);
    expect(s.storage.writes).toEqual([
      'create TRYING',
      'update TRYING',
      'update TRIED',
      'update CANCELLING',
      'complete CANCELLED',
    ]);
    expect(s.calls.slice(2)).toEqual(['cancel b o', 'cancel a o']);
  });

  it('the same try sent again while the first runs here waits for it and gets its answer, not run twice', async () => {
    const s = await startBranchy();
    let release!: () => void;
    s.tryGate = new Promise<void>((resolve) => (release = resolve));
    const header = contextHeader(origin());
    const first = tryOn(s.url, '/two', header);
    await eventually(() => s.calls.length === 1);
    const again = tryOn(s.url, '/two', header);
    // The duplicate has arrived, and is held while the first try runs.
    await eventually(() => s.requests === 2);
    release();
    const answers = await Promise.all([first, again]);
    expect(answers).toEqual([
      { status: 200, body: { ok: '/two' } },
      { status: 200, body: { ok: '/two' } },
    ]);
    expect(s.calls).toEqual(['try a o', 'try b o']);
  });

  it('a cancel waits for a try running here only until the branch’s deadline, then fences it out', async () => {
    // The service's clock stands still until the test moves it: the try is in time however
    // slowly it travels, and the cancel waits (300 ms) for the deadline the clock says is ahead.
    const clock = { t: Date.now(), now: () => clock.t };
    const s = await startBranchy(clock);
    let release!: () => void;
    s.tryGate = new Promise<void>((resolve) => (release = resolve));
    const o = origin({ deadline: clock.t + 300 });
    const trying = tryOn(s.url, '/two', contextHeader(o));
    await eventually(() => s.calls.length === 1);
    // Answered (at the deadline) while the try is still held: it does not wait for the try.
    const cancelled = await command(s.url, { action: 'cancel', globalId: o.globalId, xid: o.xid });
    expect(cancelled.status).toBe(200);
    clock.t += 1_000;
    release();
    // The try went on past the deadline: b was refused, the try failed, a was cancelled.
    expect(await trying).toMatchObject({ status: 400, body: { error: { code: 'TCC_DEADLINE_EXCEEDED' } } });
    expect(s.calls).toEqual(['try a o', 'cancel a o']);
    expect((await s.storage.list({})).records.map((r) => r.status)).toEqual(['CANCELLED']);
  });
});

/** The same store, as one that may lose an acknowledged write would say of itself. */
class NotLinearizable extends CountingStorage {
  override readonly linearizable = false;
}

describe('a command to the process that wrote its branch’s TRIED (a linearizable store)', () => {
  it('starts from the copy of that record: no read before its claim', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    const reads = s.storage.reads;
    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
      body: { detail: 'confirmed' },
    });
    expect(s.storage.reads - reads).toBe(0);
    expect(s.storage.writes.slice(-2)).toEqual(['update CONFIRMING', 'complete CONFIRMED']);
    // The copy is used once: the command sent again reads the tombstone.
    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
      body: { detail: 'already confirmed' },
    });
    expect(s.storage.reads - reads).toBe(1);
    expect(s.calls).toEqual(['try a o', 'try b o', 'confirm a o', 'confirm b o']);
  });

  it('reads the record when the command comes after the branch’s deadline', async () => {
    let now = Date.now();
    const s = await startBranchy({ now: () => now });
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    const [tried] = (await s.storage.list({})).records;
    now = tried!.deadline + 1;
    const reads = s.storage.reads;
    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
      body: { detail: 'confirmed' },
    });
    expect(s.storage.reads - reads).toBe(1);
    expect(s.calls).toEqual(['try a o', 'try b o', 'confirm a o', 'confirm b o']);
  });

  it('reads the record when the store may lose an acknowledged write', async () => {
    const s = await startBranchy(undefined, new NotLinearizable());
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    const reads = s.storage.reads;
    expect(await command(s.url, { action: 'cancel', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 200,
      body: { detail: 'cancelled' },
    });
    expect(s.storage.reads - reads).toBe(1);
    expect(s.calls).toEqual(['try a o', 'try b o', 'cancel b o', 'cancel a o']);
  });

  it('reads the record when it moved on since TRIED: a branch cancelled elsewhere is not confirmed', async () => {
    const s = await startBranchy();
    const o = origin();
    await tryOn(s.url, '/two', contextHeader(o));
    // Another process of the service cancelled the branch meanwhile (its writes, on the same store).
    const [tried] = (await s.storage.list({})).records;
    const cancelling = { ...tried!, status: 'CANCELLING' as const, version: tried!.version + 1 };
    await s.storage.update(cancelling, tried!.version);
    await s.storage.complete(
      { ...cancelling, status: 'CANCELLED', version: cancelling.version + 1, expiresAt: Date.now() + 60_000 },
      cancelling.version,
    );
    const reads = s.storage.reads;

    expect(await command(s.url, { action: 'confirm', globalId: o.globalId, xid: o.xid })).toMatchObject({
      status: 409,
    });
    // The claim from the copy was tried and lost its compare-and-set; the next attempt read
    // the tombstone and refused.
    expect(s.storage.writes.filter((w) => w.includes('CONFIRM'))).toEqual(['update CONFIRMING']);
    expect(s.storage.reads - reads).toBe(1);
    expect(s.calls).toEqual(['try a o', 'try b o']);
    expect((await s.storage.get(o.xid))?.status).toBe('CANCELLED');
  });
});

describe('commands to remote branches', () => {
  it('a branch that takes a command and never answers fails it within commandTimeoutMs, so recovery passes end', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/.tcc') return; // takes the command, never answers
      send(res, 200, { ok: true });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const storage = new MemoryStorage();
    const tcc = new Tcc({
      domain: 'order',
      storage,
      recovery: { recoverAfterMs: 0 },
      http: { commandTimeoutMs: 200 },
    });
    await expect(tcc.transaction(() => tcc.http(url).post('/try', {}))).rejects.toMatchObject({
      code: 'TCC_CONFIRM_FAILED',
    });
    const [left] = (await storage.list({})).records;
    expect(left).toMatchObject({ status: 'CONFIRMING' });
    expect(left?.lastError).toMatch(/no answer within 200 ms/);
    expect(await tcc.recover(left!.xid)).toMatchObject({ outcome: 'failed' });
  });
});
