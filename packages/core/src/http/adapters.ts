import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpHandlerOptions, TccHttpHandler } from './http-handler.js';
import { COMMAND_PATH } from './wire.js';

/** The part of a `Tcc` the adapters use. */
export interface HasHttpHandler {
  httpHandler(options?: HttpHandlerOptions): TccHttpHandler;
}

/** An Express (or Connect) middleware, typed without importing Express. */
export type ExpressMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * The TCC middleware for Express 4/5 (`app.use(tccExpress(tcc))`): serves `<base>/.tcc` and
 * runs requests carrying a `tcc-context` header as branches. Mount it before `express.json()`,
 * so that `.tcc` commands get its own size limit and error answers (after it, a command body
 * the parser already read is used as parsed).
 */
export function tccExpress(tcc: HasHttpHandler, options: HttpHandlerOptions = {}): ExpressMiddleware {
  return tcc.httpHandler(options);
}

/** The few members of a Fastify instance, request and reply the plugin uses. */
interface FastifyLike {
  addHook(
    name: 'onRequest',
    hook: (request: { raw: IncomingMessage }, reply: FastifyReplyLike, done: (error?: Error) => void) => void,
  ): unknown;
  route(options: {
    method: string;
    url: string;
    handler: (request: unknown, reply: FastifyReplyLike) => void;
  }): unknown;
}

interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): unknown;
}

/** A Fastify plugin function, typed without importing Fastify. */
export type FastifyPlugin = (instance: FastifyLike, options: unknown, done: (error?: Error) => void) => void;

/**
 * The TCC plugin for Fastify 4/5 (`await app.register(tccFastify(tcc))`). It is not
 * encapsulated (like a `fastify-plugin` plugin), so its hook sees every route: requests carrying
 * a `tcc-context` header run as branches, and `POST <base>/.tcc` is served before Fastify parses
 * the body (so the command's own size limit and error answers apply).
 */
export function tccFastify(tcc: HasHttpHandler, options: HttpHandlerOptions = {}): FastifyPlugin {
  const handler = tcc.httpHandler(options);
  const commandPath = `${(options.base ?? '/').replace(/\/+$/, '')}/${COMMAND_PATH}`;
  const plugin: FastifyPlugin = (fastify, _options, done) => {
    fastify.addHook('onRequest', (request, reply, next) => {
      const raw = request.raw;
      const url = raw.url ?? '/';
      const query = url.indexOf('?');
      if ((query === -1 ? url : url.slice(0, query)) === commandPath) {
        reply.hijack();
        handler(raw, reply.raw, () => {});
        return;
      }
      // The rest of Fastify's request lifecycle runs inside the branch's scope.
      handler(raw, reply.raw, () => next());
    });
    // Registered so the path is a route (a 404 would answer before hooks in some setups);
    // the hook above answers it first.
    fastify.route({ method: 'POST', url: commandPath, handler: () => {} });
    done();
  };
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'tcc',
  });
  return plugin;
}
