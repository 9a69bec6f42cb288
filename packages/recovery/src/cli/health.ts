import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { InvalidOptionError } from '@tcc/core';
import { parsePositiveInt } from './duration.js';

/** The state of a Redis client as ioredis names it: `ready` once it can take commands. */
export type RedisState = () => Promise<string>;

/**
 * Serves `GET /healthz` for a process supervisor (Kubernetes probes and the like): 200 with
 * `{"status":"ok","redis":"ready"}` while the queue's Redis connection is ready, 503 with its
 * state (`connecting`, `reconnecting`, `end`, ...) otherwise. Anything else is 404.
 *
 * @throws {InvalidOptionError} naming the port or host when it cannot listen there.
 */
export async function serveHealth(portText: string, host: string, state: RedisState): Promise<Server> {
  const port = parsePortNumber(portText);
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (request.method !== 'GET' || path !== '/healthz') {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end('{"error":"not found: GET /healthz"}\n');
      return;
    }
    state().then(
      (redis) => {
        const ok = redis === 'ready';
        response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ status: ok ? 'ok' : 'unavailable', redis })}\n`);
      },
      (error: unknown) => {
        response.writeHead(503, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ status: 'unavailable', error: String(error) })}\n`);
      },
    );
  });
  server.listen(port, host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  } catch (error) {
    throw new InvalidOptionError(
      `--health-port ${port}: cannot listen on ${host}:${port} (${(error as Error).message})`,
    );
  }
  // A probe must not keep the process alive after the worker closed.
  server.unref();
  return server;
}

function parsePortNumber(text: string): number {
  const port = parsePositiveInt(text, '--health-port');
  if (port > 65_535)
    throw new InvalidOptionError(`--health-port must be at most 65535, got ${JSON.stringify(text)}`);
  return port;
}
