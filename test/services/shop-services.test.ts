import { type ChildProcess, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bodyDigest,
  COMMAND_PATH,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  encodeContextHeader,
  SIGNATURE_HEADER,
  Signer,
  signCommand,
} from '@tcc/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until } from '../support/redis-servers.js';

/** An HTTP answer; its JSON body is checked by `expect`. */
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
type Answer = { status: number; body: any };

// Compiled by `tsc -b examples` in beforeAll: the services run as real processes from dist.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'services-test-secret-0123456789abcdef';
const signer = new Signer(SECRET);

type Name = 'order' | 'capital' | 'red-packet';
const urls = {} as Record<Name, string>;
const children = new Map<Name, ChildProcess>();
// The order service reaches each wallet through a relay, so a test can see a try answered or hold one back.
const relays = {} as Record<'capital' | 'red-packet', Relay>;
let env: NodeJS.ProcessEnv;
let dataDir: string;
let launch: (name: Name, env: NodeJS.ProcessEnv, timeoutMs: number) => Promise<ChildProcess>;

interface Books {
  accounts: Record<string, { balance: number; frozen: number }>;
  records: { xid: string; status: string }[];
  recordCount: number;
}

async function books(name: 'capital' | 'red-packet'): Promise<Books> {
  return (await (await fetch(`${urls[name]}/state`)).json()) as Books;
}

function total(b: Books): number {
  return Object.values(b.accounts).reduce((sum, a) => sum + a.balance + a.frozen, 0);
}

async function order(body: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(`${urls.order}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** A context header for `POST /hold` with `body` to capital, signed with `s` unless it is null. */
function header(
  o: { globalId: string; xid: string; deadline?: number },
  body: unknown,
  s: Signer | null = signer,
  at = Date.now(),
): string {
  const origin = {
    rootDomain: 'order',
    deadline: Date.now() + 30_000,
    parent: { domain: 'order', xid: o.globalId },
    ...o,
  };
  if (s === null) return encodeContextHeader(origin, undefined, at);
  return encodeContextHeader(origin, s, at, {
    domain: 'capital',
    method: 'POST',
    path: '/hold',
    digest: bodyDigest(JSON.stringify(body)),
  });
}

async function hold(h: string | undefined, body: unknown): Promise<Answer> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${urls.capital}/hold`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [DIGEST_HEADER]: bodyDigest(text),
      ...(h === undefined ? {} : { [CONTEXT_HEADER]: h }),
    },
    body: text,
  });
  return { status: response.status, body: await response.json() };
}

async function command(body: unknown, signature?: string | null, raw?: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const sig = signature === undefined ? signCommand(body as never, signer, Date.now(), 'capital') : signature;
  if (sig !== null) headers[SIGNATURE_HEADER] = sig;
  const response = await fetch(`${urls.capital}/${COMMAND_PATH}`, {
    method: 'POST',
    headers,
    body: raw ?? JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * Bounds a service's start (PGlite's WebAssembly and migrations) only so that a hang ends: a
 * loaded machine may take long, which is no failure.
 */
const START_MS = 180_000;

/**
 * Forwards every request to a wallet and its answer back. `holdNext` keeps the next
 * `POST /hold` until it is released; `nextAnswer` resolves once the wallet has answered the next
 * one (the answer is then in the relay's hands, whatever happens to the wallet).
 */
interface Relay {
  readonly url: string;
  holdNext(): { arrived: Promise<void>; release(): void };
  nextAnswer(): Promise<number>;
  close(): Promise<void>;
}

async function startRelay(target: string): Promise<Relay> {
  const holds: { arrived(): void; released: Promise<void> }[] = [];
  const answers: ((status: number) => void)[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const isHold = req.method === 'POST' && req.url === '/hold';
    const hold = isHold ? holds.shift() : undefined;
    if (hold !== undefined) {
      hold.arrived();
      await hold.released;
    }
    try {
      const answer = await fetch(`${target}${req.url}`, {
        method: req.method ?? 'GET',
        headers: forwardedHeaders(req),
        ...(chunks.length === 0 ? {} : { body: Buffer.concat(chunks) }),
      });
      const body = Buffer.from(await answer.arrayBuffer());
      if (isHold) answers.shift()?.(answer.status);
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
      res.end(body);
    } catch (error) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'RELAY', message: String(error) } }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdNext() {
      let arrived!: () => void;
      let release!: () => void;
      const hold = {
        arrived: new Promise<void>((resolve) => (arrived = resolve)),
        released: new Promise<void>((resolve) => (release = resolve)),
      };
      holds.push({ arrived, released: hold.released });
      return { arrived: hold.arrived, release };
    },
    nextAnswer: () => new Promise((resolve) => answers.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function forwardedHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (['host', 'connection', 'content-length', 'transfer-encoding'].includes(name)) continue;
    for (const v of Array.isArray(value) ? value : [value ?? '']) headers.append(name, v);
  }
  return headers;
}

let n = 0;
const ids = () => {
  n += 1;
  return { globalId: `g-test-${n}`, xid: `x-test-${n}`, orderId: `t-${n}` };
};

beforeAll(async () => {
  const build = spawnSync('npx', ['tsc', '-b', 'examples'], { cwd: repoRoot, encoding: 'utf8' });
  expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
  ({ launch } = (await import(join(repoRoot, 'examples/dist/services/launch.js'))) as {
    launch: typeof launch;
  });
  dataDir = await mkdtemp(join(tmpdir(), 'tcc-services-'));
  for (const name of ['order', 'capital', 'red-packet'] as const)
    urls[name] = `http://127.0.0.1:${await freePort()}`;
  env = {
    ...process.env,
    SHOP_DATA: dataDir,
    TCC_SECRET: SECRET,
    SHOP_TEST_HOOKS: '1',
    SHOP_ORDER_URL: urls.order,
    SHOP_CAPITAL_URL: urls.capital,
    SHOP_RED_PACKET_URL: urls['red-packet'],
  };
  relays.capital = await startRelay(urls.capital);
  relays['red-packet'] = await startRelay(urls['red-packet']);
  const orderEnv = {
    ...env,
    SHOP_CAPITAL_URL: relays.capital.url,
    SHOP_RED_PACKET_URL: relays['red-packet'].url,
  };
  await Promise.all(
    (['order', 'capital', 'red-packet'] as const).map(async (name) =>
      children.set(name, await launch(name, name === 'order' ? orderEnv : env, START_MS)),
    ),
  );
}, 600_000);

afterAll(async () => {
  for (const child of children.values()) child.kill('SIGKILL');
  await Promise.all(Object.values(relays).map((relay) => relay.close()));
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('the shop as three services (separate processes, PGlite each)', () => {
  it('confirm path: the order is paid from both wallets', async () => {
    const [c0, r0] = [await books('capital'), await books('red-packet')];
    const answer = await order({ orderId: 'ok-1', userId: 'alice', cash: 30, redPacket: 5 });
    expect(answer).toMatchObject({ status: 200, body: { status: 'CONFIRMED' } });
    const [c1, r1] = [await books('capital'), await books('red-packet')];
    expect(c1.accounts.alice).toEqual({ balance: c0.accounts.alice!.balance - 30, frozen: 0 });
    expect(c1.accounts.shop!.balance).toBe(c0.accounts.shop!.balance + 30);
    expect(r1.accounts.shop!.balance).toBe(r0.accounts.shop!.balance + 5);
    expect([total(c1), total(r1)]).toEqual([150, 30]);
  });

  it('cancel path: a refused capital try cancels the order; nothing moves', async () => {
    const [c0, r0] = [await books('capital'), await books('red-packet')];
    const answer = await order({ orderId: 'no-1', userId: 'bob', cash: 500, redPacket: 5 });
    expect(answer).toMatchObject({
      status: 409,
      body: { status: 'CANCELLED', error: { code: 'INSUFFICIENT_FUNDS' } },
    });
    expect((await books('capital')).accounts).toEqual(c0.accounts);
    expect((await books('red-packet')).accounts).toEqual(r0.accounts);
  });

  it('cancel before try (the try held back and sent after): empty rollback, then the try is refused unrun', async () => {
    const t = ids();
    const before = await books('capital');
    expect(await command({ action: 'cancel', globalId: t.globalId, xid: t.xid })).toMatchObject({
      status: 200,
    });
    const body = { orderId: t.orderId, userId: 'alice', amount: 10 };
    const late = await hold(header(t, body), body);
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    const after = await books('capital');
    expect(after.accounts).toEqual(before.accounts);
    expect(after.records).toContainEqual({ xid: t.xid, status: 'CANCELLED', type: 'BRANCH' });
  });

  it('a try after the root deadline is refused and writes nothing', async () => {
    const t = ids();
    const before = await books('capital');
    const body = { orderId: t.orderId, userId: 'alice', amount: 10 };
    const late = await hold(header({ ...t, deadline: Date.now() - 1 }, body), body);
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'TCC_TRANSACTION_HANGING' } } });
    expect(await books('capital')).toEqual(before);
  });

  it('a duplicate try runs once; a duplicate confirm is a no-op', async () => {
    const t = ids();
    const before = await books('capital');
    const body = { orderId: t.orderId, userId: 'alice', amount: 10 };
    const h = header(t, body);
    const first = await hold(h, body);
    const again = await hold(h, body);
    expect(first).toEqual({ status: 200, body: { held: 10 } });
    expect(again).toEqual(first);
    expect((await books('capital')).accounts.alice).toEqual({
      balance: before.accounts.alice!.balance - 10,
      frozen: before.accounts.alice!.frozen + 10,
    });
    const confirm = { action: 'confirm', globalId: t.globalId, xid: t.xid };
    expect((await command(confirm)).status).toBe(200);
    expect((await command(confirm)).status).toBe(200);
    const after = await books('capital');
    expect(after.accounts.shop!.balance).toBe(before.accounts.shop!.balance + 10);
    expect(after.accounts.alice!.frozen).toBe(before.accounts.alice!.frozen);
    expect(total(after)).toBe(150);
  });

  it('every rejected request (unsigned, forged, expired, changed, malformed, oversize, unknown action) changes nothing', async () => {
    const t = ids();
    const held = { orderId: t.orderId, userId: 'alice', amount: 1 };
    await hold(header(t, held), held);
    const before = await books('capital');
    const freeze = { orderId: `${t.orderId}-x`, userId: 'alice', amount: 5 };
    const changed = header(ids(), freeze).split(';');
    changed[4] = String(Number(changed[4]) + 3_600_000);
    const tries: [string | undefined, number][] = [
      [header(ids(), freeze, null), 401],
      [header(ids(), freeze, new Signer('some-other-secret-0123456789')), 401],
      [header(ids(), freeze, signer, Date.now() - 120_000), 401],
      [header(ids(), { ...freeze, amount: 500 }), 401],
      [changed.join(';'), 401],
      ['1;not;enough', 400],
      [`1;${'g'.repeat(700)};x;order;1`, 400],
    ];
    for (const [h, status] of tries) expect((await hold(h, freeze)).status, h).toBe(status);
    expect((await hold(undefined, freeze)).body.error.code).toBe('TCC_TRANSACTION_REQUIRED');
    const confirm = { action: 'confirm', globalId: t.globalId, xid: t.xid };
    const commands: [unknown, string | null | undefined, string | undefined, number][] = [
      [confirm, null, undefined, 401],
      [
        confirm,
        signCommand(confirm as never, new Signer('some-other-secret-0123456789'), Date.now(), 'capital'),
        undefined,
        401,
      ],
      [confirm, signCommand(confirm as never, signer, Date.now() - 120_000, 'capital'), undefined, 401],
      [
        { ...confirm, action: 'cancel' },
        signCommand(confirm as never, signer, Date.now(), 'capital'),
        undefined,
        401,
      ],
      [confirm, signCommand(confirm as never, signer, Date.now(), 'red-packet'), undefined, 401],
      [{ ...confirm, action: 'commit' }, undefined, undefined, 400],
      [undefined, null, '{"action":', 400],
      [undefined, null, JSON.stringify({ pad: 'x'.repeat(30_000) }), 413],
    ];
    for (const [body, signature, raw, status] of commands) {
      const answer = await command(body, signature, raw);
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.body.error.message).toEqual(expect.any(String));
    }
    expect(await books('capital')).toEqual(before);
  });

  it('capital killed (SIGKILL) after its try and restarted: recovery on the root finishes the order, money conserved', async () => {
    const [c0, r0] = [await books('capital'), await books('red-packet')];
    // Capital answers its try; red-packet's is held until capital is dead, so the confirm finds it gone.
    const capitalAnswered = relays.capital.nextAnswer();
    const redPacket = relays['red-packet'].holdNext();
    const placing = order({ orderId: 'kill-1', userId: 'alice', cash: 20, redPacket: 2 });
    await Promise.all([redPacket.arrived, capitalAnswered.then((status) => expect(status).toBe(200))]);
    expect((await books('capital')).accounts.alice!.frozen).toBe(c0.accounts.alice!.frozen + 20);
    const capital = children.get('capital')!;
    const exited = once(capital, 'exit');
    capital.kill('SIGKILL');
    await exited;
    redPacket.release();
    const answer = await placing;
    expect(answer).toMatchObject({ status: 202, body: { status: 'CONFIRMING' } });
    children.set('capital', await launch('capital', env, START_MS));
    // Bounds a hang only: recovery retries on its own schedule, slower on a loaded machine.
    await until(
      'the order service finished the transaction',
      async () => ((await (await fetch(`${urls.order}/state`)).json()) as Books).recordCount === 0,
      120_000,
    ).catch(async (error) => {
      throw new Error(
        `${error}: ${JSON.stringify(await (await fetch(`${urls.order}/state`)).json())} capital: ${JSON.stringify(await books('capital'))}`,
      );
    });
    const [c1, r1] = [await books('capital'), await books('red-packet')];
    expect(c1.accounts.alice).toEqual({
      balance: c0.accounts.alice!.balance - 20,
      frozen: c0.accounts.alice!.frozen,
    });
    expect(c1.accounts.shop!.balance).toBe(c0.accounts.shop!.balance + 20);
    expect(r1.accounts.shop!.balance).toBe(r0.accounts.shop!.balance + 2);
    expect([total(c1), total(r1)]).toEqual([150, 30]);
    expect(
      c1.records.filter((r) => r.status !== 'CONFIRMED' && r.status !== 'CANCELLED' && r.status !== 'TRIED'),
    ).toEqual([]);
  }, 600_000);
});
