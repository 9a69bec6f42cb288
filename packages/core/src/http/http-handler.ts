import { AsyncResource } from 'node:async_hooks';
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, trace } from '@opentelemetry/api';
import { messageOf } from '../base/checks.js';
import type { Clock } from '../base/clock.js';
import { httpStatusOf, tccCodeOf } from '../base/codes.js';
import type { BranchKeeper, BranchReply, BranchSeen } from '../branch/branches.js';
import { TryInProgressError } from '../branch/errors.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { BranchOrigin } from '../transaction/active-transaction.js';
import type { OutcomeReporter } from '../transaction/outcome-reporter.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import { BadRequestError, UnauthorizedError } from './errors.js';
import type { ResolvedHttpTransportOptions } from './options.js';
import { ResponseCapture, sendJson } from './response-capture.js';
import type { Signer } from './signing.js';
import {
  COMMAND_PATH,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  decodeContextHeader,
  MAX_RESULT_MESSAGE_CHARS,
  readCommands,
  SIGNATURE_HEADER,
} from './wire.js';

/** Options of `tcc.httpHandler(options)`. */
export interface HttpHandlerOptions {
  /** Path prefix of this service's TCC endpoint: commands are served at `<base>/.tcc`. Default `/`. */
  base?: string;
}

/** Called to pass a request on to the application (Express's and Connect's `next`). */
export type NextFunction = (error?: unknown) => void;

/**
 * Middleware for node:http (and, through the adapters, Express and Fastify): serves
 * `POST <base>/.tcc`, and runs every request that carries a `tcc-context` header as the try of
 * a branch, so `@Compensable` methods called while handling it join that branch.
 */
export type TccHttpHandler = (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void;

/** What the handler needs of its `Tcc`. */
export interface HttpCallee {
  /** This service's domain: signed tries and commands must be for it. */
  readonly domain: string;
  readonly manager: TransactionManager;
  readonly keeper: BranchKeeper;
  readonly reporter: OutcomeReporter;
  readonly telemetry: Telemetry;
  readonly clock: Clock;
  readonly signer: Signer | undefined;
  readonly options: ResolvedHttpTransportOptions;
}

export function createHttpHandler(callee: HttpCallee, options: HttpHandlerOptions = {}): TccHttpHandler {
  const base = (options.base ?? '/').replace(/\/+$/, '');
  const commandPath = `${base}/${COMMAND_PATH}`;
  return (req, res, next) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path === commandPath) {
      void serveCommand(callee, req, res);
      return;
    }
    const header = req.headers[CONTEXT_HEADER];
    if (header === undefined) {
      next();
      return;
    }
    void serveBranch(callee, header, req, res, next);
  };
}

async function serveBranch(
  callee: HttpCallee,
  header: string | string[],
  req: IncomingMessage,
  res: ServerResponse,
  next: NextFunction,
): Promise<void> {
  const { keeper, manager, clock, signer, options, telemetry } = callee;
  let origin: BranchOrigin;
  let digest: string | undefined;
  try {
    const claimed = req.headers[DIGEST_HEADER];
    origin = decodeContextHeader(
      header,
      signer,
      clock.now(),
      options.maxClockSkewMs,
      options.maxHeaderBytes,
      {
        domain: callee.domain,
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        digest: claimed,
      },
    );
    if (signer !== undefined) {
      digest = claimed as string;
      // The body must be checked against the signed digest as it is read: one a framework read
      // before this handler (a body parser mounted first) cannot be.
      if (req.readableEnded) {
        throw new UnauthorizedError(
          `${DIGEST_HEADER}: the body was read before the TCC handler, so it cannot be checked against its signed digest (mount the TCC middleware before any body parser)`,
        );
      }
    }
  } catch (error) {
    refuse(req, res, error);
    return;
  }
  // The caller's trace (W3C traceparent), unless an HTTP instrumentation already made a span.
  const parent =
    trace.getSpan(context.active()) === undefined
      ? propagation.extract(context.active(), req.headers)
      : context.active();
  const span = context.with(parent, () => telemetry.start('tcc.try', origin));
  let opening: Awaited<ReturnType<BranchKeeper['open']>>;
  try {
    // Within the span: the branch record keeps its traceparent for recovery.
    opening = await telemetry.within(span, () => keeper.open(origin));
  } catch (error) {
    telemetry.end(span, undefined, error);
    refuse(req, res, error);
    return;
  }
  if (opening.kind !== 'open')
    telemetry.end(span, undefined, opening.kind === 'refused' ? opening.error : undefined);
  if (opening.kind === 'refused') {
    refuse(req, res, opening.error);
    return;
  }
  if (opening.kind === 'duplicate') {
    const answer = seenAnswer(opening);
    if (answer.reply !== undefined) {
      const reply = answer.reply;
      res.statusCode = reply.status;
      if (reply.contentType !== undefined) res.setHeader('content-type', reply.contentType);
      res.end(reply.body);
    } else refuse(req, res, answer.error);
    return;
  }
  const tx = opening.tx;
  const guard = digest === undefined ? undefined : guardBody(req, digest);
  if (guard !== undefined) tx.gate = guard.gate;
  const capture = new ResponseCapture(res);
  const handled = telemetry.within(span, async () => {
    manager.withinBranch(tx, () => {
      // Stream events (the body a framework reads before routing) are emitted from the
      // connection's async context: bind them to the branch's, or the route would run outside it.
      bindEmitter(req);
      next();
    });
    return capture.ended;
  });
  // A forged body is answered at once: the route may never answer a body it could not read.
  const reply =
    guard === undefined
      ? await handled
      : await Promise.race([
          handled,
          guard.refused.then((error): BranchReply => {
            tx.tryFailure ??= { error };
            return { status: httpStatusOf(error.code), contentType: undefined, body: Buffer.alloc(0) };
          }),
        ]);
  let closed: Awaited<ReturnType<BranchKeeper['close']>>;
  try {
    closed = await keeper.close(tx, reply.status < 400, reply);
  } catch (error) {
    closed = { tried: false, error };
  }
  telemetry.end(span, tx.record, closed.tried ? undefined : (closed.error ?? `answered ${reply.status}`));
  if (closed.seen !== undefined) {
    // The branch record was there before this try's first participant could create it: the
    // try was sent again (answered as the first time) or came after its cancel (refused).
    const answer = seenAnswer(closed.seen);
    if (answer.reply !== undefined) capture.replaceWith(answer.reply);
    else {
      const { status, body } = errorAnswer(answer.error);
      capture.replace(status, body);
    }
    return;
  }
  if (closed.tried || (reply.status >= 400 && closed.error === undefined)) {
    capture.flush();
    return;
  }
  if (reply.status >= 400 && tccCodeOf(closed.error) === undefined) {
    // The handler's own error answer stands (e.g. a business 409), also when a try in it threw.
    capture.flush();
    return;
  }
  const { status, body } = errorAnswer(closed.error);
  capture.replace(status === 500 && reply.status >= 400 ? reply.status : status, body);
}

async function serveCommand(callee: HttpCallee, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { keeper, reporter, clock, signer, options } = callee;
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    refuse(req, res, new BadRequestError(`${req.method} is not allowed on ${COMMAND_PATH}; use POST`, 405));
    return;
  }
  let read: ReturnType<typeof readCommands>;
  try {
    const parsed = (req as { body?: unknown }).body;
    // A framework's body parser may have read the stream already (Express with express.json()).
    const body =
      parsed !== undefined && parsed !== null && typeof parsed === 'object' && !Buffer.isBuffer(parsed)
        ? parsed
        : Buffer.isBuffer(parsed)
          ? parsed
          : await readBody(req, options.maxBodyBytes);
    read = readCommands(
      body,
      req.headers[SIGNATURE_HEADER],
      signer,
      clock.now(),
      options.maxClockSkewMs,
      callee.domain,
    );
  } catch (error) {
    refuse(req, res, error);
    return;
  }
  // The commands of a batch are independent (each its own branch): they run side by side, and
  // each answer is the one it would have had alone.
  const answers = await Promise.all(
    read.commands.map(async (command) => {
      try {
        if (command.action === 'query') {
          const { outcome, detail } = await reporter.answer(command);
          return { status: 200, body: { outcome, detail } };
        }
        const detail = await keeper.command(command.action, command.globalId, command.xid);
        return { status: 200, body: { ok: true, detail } };
      } catch (error) {
        return errorAnswer(error);
      }
    }),
  );
  if (!read.batch) {
    const [answer] = answers as [CommandAnswer];
    const retryAfterMs = (answer.body as { retryAfterMs?: unknown }).retryAfterMs;
    // Seconds, as HTTP has it; the body says it to the millisecond.
    if (typeof retryAfterMs === 'number') res.setHeader('retry-after', Math.ceil(retryAfterMs / 1000));
    sendJson(res, answer.status, answer.body);
    return;
  }
  sendJson(res, 200, { results: answers.map((a) => ({ status: a.status, ...shortened(a.body) })) });
}

/** An answer's body with its error message cut to what a batch answer may hold. */
function shortened(body: unknown): object {
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  if (typeof error?.message !== 'string' || error.message.length <= MAX_RESULT_MESSAGE_CHARS)
    return body as object;
  return {
    ...(body as object),
    error: { ...error, message: `${error.message.slice(0, MAX_RESULT_MESSAGE_CHARS)}…` },
  };
}

type CommandAnswer = { readonly status: number; readonly body: unknown };

/** How to answer a try whose branch was there already: its first reply, or an error. */
function seenAnswer(seen: BranchSeen): { reply?: BranchReply; error?: unknown } {
  if (seen.kind === 'refused') return { error: seen.error };
  // The caller retried a try that already ran: the business method does not run again.
  if (seen.reply !== undefined) return { reply: seen.reply };
  if (seen.status === 'TRYING') return { error: new TryInProgressError() };
  return {
    reply: {
      status: 200,
      contentType: 'application/json',
      body: Buffer.from(JSON.stringify({ duplicate: true, status: seen.status })),
    },
  };
}

/** Answers with an error and makes sure the rest of an unread body cannot hold the socket. */
function refuse(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  const answer = errorAnswer(error);
  if (!req.complete) res.setHeader('connection', 'close');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, answer.status, answer.body);
}

/**
 * The answer to an error: its code's status (`TCC_CODES`), but a bad request's own (400, 405,
 * 413), and `retryAfterMs` for a busy one. Told apart by `code`, so an error of another copy
 * of a tcc package (a store's) is answered alike; anything else is `TCC_INTERNAL`.
 */
function errorAnswer(error: unknown): { status: number; body: unknown } {
  const code = tccCodeOf(error);
  if (code === undefined) {
    return { status: 500, body: { error: { code: 'TCC_INTERNAL', message: messageOf(error) } } };
  }
  const { message, status, retryAfterMs } = error as Error & { status?: unknown; retryAfterMs?: unknown };
  return {
    status: code === 'TCC_BAD_REQUEST' && typeof status === 'number' ? status : httpStatusOf(code),
    body:
      code === 'TCC_BUSY' && typeof retryAfterMs === 'number'
        ? { error: { code, message }, retryAfterMs }
        : { error: { code, message } },
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      new BadRequestError(`body of ${declared} bytes is over the limit of ${limit}`, 413),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(new BadRequestError(`body is over the limit of ${limit} bytes`, 413));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * Checks a signed try's body against its signed digest as the route reads it: the digest is
 * taken over every chunk the request emits, and at its end a body that does not match emits
 * an error instead of `end` (so no body parser hands it to the route). `gate` is what every
 * enlist of the branch waits for: no participant is written before the body proved genuine (an
 * enlist that comes before the route read the body reads the rest itself). `refused` resolves
 * with the error if the body was forged.
 */
function guardBody(
  req: IncomingMessage,
  digest: string,
): { readonly gate: () => Promise<void>; readonly refused: Promise<UnauthorizedError> } {
  const hash: Hash = createHash('sha256');
  let settle!: (error?: UnauthorizedError) => void;
  let refuse!: (error: UnauthorizedError) => void;
  const checked = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  const refused = new Promise<UnauthorizedError>((resolve) => (refuse = resolve));
  // Awaited only by enlists; a route that enlists nothing must not see an unhandled rejection.
  checked.catch(() => {});
  const emit = req.emit;
  req.emit = function guardedEmit(this: IncomingMessage, event: string | symbol, ...args: unknown[]) {
    if (event === 'data') hash.update(args[0] as Buffer | string);
    else if (event === 'end') {
      const received = `sha-256=:${hash.digest('base64')}:`;
      if (received !== digest) {
        const error = new UnauthorizedError(`${DIGEST_HEADER}: the body does not match its signed digest`);
        settle(error);
        refuse(error);
        // To whoever reads the body; with nobody listening, an 'error' would end the process.
        return this.listenerCount('error') > 0 ? emit.call(this, 'error', error) : false;
      }
      settle();
    }
    return emit.call(this, event, ...args);
  } as typeof emit;
  const gate = () => {
    if (!req.readableEnded && req.readableFlowing !== true) req.resume();
    return checked;
  };
  return { gate, refused };
}

function bindEmitter(emitter: IncomingMessage): void {
  const resource = new AsyncResource('tcc.branch');
  const emit = emitter.emit;
  emitter.emit = function boundEmit(this: IncomingMessage, ...args: Parameters<typeof emit>) {
    return resource.runInAsyncScope(emit, this, ...args);
  } as typeof emit;
}
