import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { statementCount } from './database.js';

/** Requests this process has served, and the bytes of its connections, for `GET /stats`. */
const traffic = { requests: 0, bytesIn: 0, bytesOut: 0, open: new Set<Socket>() };

const MAX_BODY = 16 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'TOO_LARGE', 'body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    if (value === null || typeof value !== 'object') throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new HttpError(400, 'BAD_JSON', `malformed JSON: ${(error as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A JSON error answer, with the TCC `code` when the error has one. */
export function sendError(res: ServerResponse, error: unknown): void {
  const e = error as { status?: unknown; code?: unknown; message?: unknown; name?: unknown };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 500;
  sendJson(res, status, {
    error: {
      code: typeof e.code === 'string' ? e.code : String(e.name ?? 'Error'),
      message: String(e.message ?? error),
    },
  });
}

export function positiveInt(value: unknown, name: string): number {
  if (!Number.isInteger(value) || (value as number) < 0)
    throw new HttpError(400, 'BAD_REQUEST', `${name} must be a non-negative integer`);
  return value as number;
}

export function id(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    throw new HttpError(400, 'BAD_REQUEST', `${name} must be 1-64 letters, digits, _ . -`);
  }
  return value;
}

/** Listens on `url`'s host and port, with idle keep-alive connections kept 30 s. */
export async function listen(server: Server, url: string): Promise<void> {
  server.keepAliveTimeout = 30_000;
  server.on('request', () => traffic.requests++);
  server.on('connection', (socket: Socket) => {
    traffic.open.add(socket);
    socket.once('close', () => {
      traffic.open.delete(socket);
      traffic.bytesIn += socket.bytesRead;
      traffic.bytesOut += socket.bytesWritten;
    });
  });
  const { hostname, port } = new URL(url);
  await new Promise<void>((resolve) => server.listen(Number(port), hostname, resolve));
}

/**
 * `GET /stats`: SQL trips sent to PGlite, CPU time used, requests served and the bytes of the
 * connections they came on (requests and answers, headers included) so far, read by the benchmark.
 */
export function sendStats(res: ServerResponse): void {
  let { bytesIn, bytesOut } = traffic;
  for (const socket of traffic.open) {
    bytesIn += socket.bytesRead;
    bytesOut += socket.bytesWritten;
  }
  sendJson(res, 200, {
    statements: statementCount.total,
    cpu: process.cpuUsage(),
    requests: traffic.requests,
    bytesIn,
    bytesOut,
  });
}
