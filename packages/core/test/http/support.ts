import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, Tcc, type TccError, type TransactionRecord } from '@tcc/core';
import {
  type BranchOrigin,
  bodyDigest,
  COMMAND_PATH,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  encodeContextHeader,
  SIGNATURE_HEADER,
  Signer,
  signCommand,
} from '@tcc/core/http';
import { afterEach } from 'vitest';

/** An HTTP answer; its JSON body is checked by `expect`. */
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
export type Answer = { status: number; body: any };

export const SECRET = 'a-shared-secret-of-32-characters!';

export class Refused extends Error {
  override readonly name = 'Refused';
}

/** Accounts with funds frozen per order: try freezes, confirm spends, cancel releases. */
export class Accounts {
  readonly balances = new Map<string, number>();
  readonly frozen = new Map<string, number>();
  spent = 0;
  readonly calls: string[] = [];

  constructor(opening: Record<string, number>) {
    for (const [k, v] of Object.entries(opening)) this.balances.set(k, v);
  }

  freeze(orderId: string, user: string, amount: number): void {
    this.calls.push(`try:${orderId}`);
    const balance = this.balances.get(user) ?? 0;
    if (balance < amount) throw new Refused(`${user} has ${balance}, needs ${amount}`);
    this.balances.set(user, balance - amount);
    this.frozen.set(orderId, amount);
  }

  confirm(orderId: string): void {
    this.calls.push(`confirm:${orderId}`);
    const amount = this.frozen.get(orderId);
    if (amount === undefined) return;
    this.frozen.delete(orderId);
    this.spent += amount;
  }

  cancel(orderId: string, user: string): void {
    this.calls.push(`cancel:${orderId}`);
    const amount = this.frozen.get(orderId);
    if (amount === undefined) return;
    this.frozen.delete(orderId);
    this.balances.set(user, (this.balances.get(user) ?? 0) + amount);
  }

  total(): number {
    let sum = this.spent;
    for (const v of this.balances.values()) sum += v;
    for (const v of this.frozen.values()) sum += v;
    return sum;
  }
}

export interface Freeze {
  orderId: string;
  user: string;
  amount: number;
  /** Test hook: the try waits this long before it freezes. */
  delayMs?: number;
}

export type Route = (req: IncomingMessage, body: unknown, res: ServerResponse) => Promise<void>;

export interface Service {
  readonly tcc: Tcc;
  readonly storage: MemoryStorage;
  readonly accounts: Accounts;
  readonly url: string;
  readonly server: Server;
  records(): Promise<TransactionRecord[]>;
  close(): Promise<void>;
}

/**
 * A service on a loopback port: `POST /freeze` runs the MANDATORY compensable freeze (as a
 * branch when the request carries a context header); `extra` adds routes (e.g. calls onwards).
 */
export async function startService(
  domain: string,
  options: {
    secret?: string;
    /** The largest `.tcc` body this service accepts (default: the SDK's). */
    maxBodyBytes?: number;
    extra?: Record<string, (tcc: Tcc, body: unknown) => Promise<unknown>>;
  } = {},
): Promise<Service> {
  const storage = new MemoryStorage();
  const http = {
    ...(options.secret === undefined ? {} : { secret: options.secret }),
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
  };
  const tcc = new Tcc({ domain, storage, recovery: { recoverAfterMs: 0 }, http });
  const accounts = new Accounts({ alice: 100, bob: 50 });
  const freeze = tcc.compensable('accounts.freeze', {
    propagation: 'MANDATORY',
    try: async (f: Freeze) => {
      if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
      accounts.freeze(f.orderId, f.user, f.amount);
    },
    confirm: (f: Freeze) => accounts.confirm(f.orderId),
    cancel: (f: Freeze) => accounts.cancel(f.orderId, f.user),
  });
  const handler = tcc.httpHandler();
  const server = createServer((req, res) =>
    handler(req, res, () => {
      void route(req, res);
    }),
  );
  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      // Inside the try: a signed try whose body does not match its digest fails the read.
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      let result: unknown;
      if (req.url === '/freeze') {
        await freeze(body as Freeze);
        result = { frozen: (body as Freeze).amount };
      } else {
        const extra = options.extra?.[req.url ?? ''];
        if (extra === undefined) return send(res, 404, { error: { code: 'NOT_FOUND', message: req.url } });
        result = await extra(tcc, body);
      }
      send(res, 200, result ?? { ok: true });
    } catch (error) {
      const e = error as TccError;
      send(res, e instanceof Refused ? 409 : 400, { error: { code: e.code ?? e.name, message: e.message } });
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    tcc,
    storage,
    accounts,
    url,
    server,
    records: async () => (await storage.list({})).records,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await tcc.stop();
    },
  };
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function origin(overrides: Partial<BranchOrigin> = {}): BranchOrigin {
  const globalId = overrides.globalId ?? `g-${Math.random().toString(36).slice(2)}`;
  return {
    globalId,
    xid: `x-${Math.random().toString(36).slice(2)}`,
    rootDomain: 'order',
    deadline: Date.now() + 30_000,
    parent: { domain: 'order', xid: globalId },
    ...overrides,
  };
}

/** A try request as a caller would send it: `POST /freeze`, with the digest of its body. */
export async function tryRequest(url: string, header: string | undefined, body: Freeze): Promise<Answer> {
  const text = JSON.stringify(body);
  const response = await fetch(`${url}/freeze`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [DIGEST_HEADER]: bodyDigest(text),
      ...(header === undefined ? {} : { [CONTEXT_HEADER]: header }),
    },
    body: text,
  });
  return { status: response.status, body: await response.json() };
}

/**
 * A context header; signed when `secret` is given, for the request `tryRequest` sends with
 * `body` (`POST /freeze` to `capital`) unless `request` says otherwise.
 */
export function contextHeader(
  o: BranchOrigin,
  secret?: string,
  now = Date.now(),
  body?: unknown,
  request: { domain?: string; method?: string; path?: string } = {},
): string {
  if (secret === undefined) return encodeContextHeader(o, undefined, now);
  return encodeContextHeader(o, new Signer(secret), now, {
    domain: request.domain ?? 'capital',
    method: request.method ?? 'POST',
    path: request.path ?? '/freeze',
    digest: bodyDigest(body === undefined ? '' : JSON.stringify(body)),
  });
}

/** Sends a `.tcc` command; `signature` overrides the computed one (`null`: none). */
export async function command(
  url: string,
  body: unknown,
  options: { secret?: string; signature?: string | null; raw?: string; domain?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.signature !== null) {
    if (options.signature !== undefined) headers[SIGNATURE_HEADER] = options.signature;
    else if (options.secret !== undefined)
      headers[SIGNATURE_HEADER] = signCommand(
        body as never,
        new Signer(options.secret),
        Date.now(),
        options.domain ?? 'capital',
      );
  }
  const response = await fetch(`${url}/${COMMAND_PATH}`, {
    method: 'POST',
    headers,
    body: options.raw ?? JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

/**
 * The servers and runtimes a test file starts, pushed here by its tests: after each test the
 * servers are closed (their keep-alive connections too) and the runtimes stopped.
 */
export function stoppedAfterEach(): { servers: Server[]; runtimes: Tcc[] } {
  const servers: Server[] = [];
  const runtimes: Tcc[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    for (const tcc of runtimes.splice(0)) await tcc.stop();
  });
  return { servers, runtimes };
}
