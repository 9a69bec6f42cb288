import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Clock } from '../base/clock.js';
import { type Batched, TurnBatcher } from '../base/turn-batcher.js';
import type { RemoteParticipant, TransactionRecord } from '../storage/record.js';
import { BusyError } from '../transaction/errors.js';
import type { BranchOutcome, OutcomeAnswer, OutcomeQuery } from '../transaction/outcome-reporter.js';
import type { RemoteInvoker, SettlePhase } from '../transaction/phase-driver.js';
import { RemoteCommandError } from './errors.js';
import type { Signer } from './signing.js';
import {
  type BranchCommand,
  COMMAND_PATH,
  MAX_BATCH_COMMANDS,
  MAX_RESULT_MESSAGE_CHARS,
  SIGNATURE_HEADER,
  signCommand,
  signCommands,
} from './wire.js';

/** Where an endpoint's commands go, worked out once per endpoint. */
interface Target {
  readonly https: boolean;
  readonly options: RequestOptions;
}

/** Endpoints remembered; a process talks to a handful, but records could name many. */
const MAX_TARGETS = 1024;
/** The part of an error answer kept in the error message. */
const MAX_ANSWER_CHARS = 500;
/**
 * The part of any answer read: a batch answer holds a result per command, whose error message
 * the callee cuts to `MAX_RESULT_MESSAGE_CHARS`; more than this is a malformed answer.
 */
const MAX_KEPT_CHARS = MAX_BATCH_COMMANDS * (MAX_RESULT_MESSAGE_CHARS + 300);
const MALFORMED_ANSWER: Answer = { status: 0, text: 'the answer to a batch of commands was malformed' };
/** A busy branch's hint is followed up to this long (a callee cannot stall its caller for longer). */
const MAX_RETRY_AFTER_MS = 60_000;
/** The wait before asking a busy branch again when it gave no hint. */
const DEFAULT_RETRY_AFTER_MS = 100;

/** A command waiting for the end of the event-loop turn. */
interface Command {
  readonly endpoint: string;
  readonly command: BranchCommand;
  readonly body: string;
  /** The callee's domain, which a signature is bound to. */
  readonly domain: string;
}

/** A command of this turn's batch, and its caller. */
type Queued = Batched<Command, Answer>;

/** One command's answer: its HTTP status, and the text kept for an error message. */
interface Answer {
  readonly status: number;
  readonly text: string;
  /** The whole answer (up to the batch limit), or its fields when it came in a batch. */
  readonly content?: string | object;
}

/**
 * Sends confirm and cancel to remote branches: `POST <endpoint>/.tcc`, through node:http with
 * keep-alive agents of its own. Not `fetch`: a command is a small fixed request, and node:http
 * writes its head and body in one write where `fetch` streams the body after the head, which
 * made the commands the larger part of a root's CPU time per transaction. Each endpoint's URL
 * is parsed once.
 *
 * The commands for one endpoint issued during one turn of the event loop (under load, those of
 * many transactions) go in one request, `{ commands: [...] }`, up to `MAX_BATCH_COMMANDS` and
 * `maxBodyBytes`; the callee answers each as it would have alone. A lone command is sent in
 * the single form, after waiting only for the end of the turn.
 */
export class HttpRemoteInvoker implements RemoteInvoker {
  readonly #targets = new Map<string, Target>();
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });
  readonly #commands = new TurnBatcher<Command, Answer>((batch) => this.#flush(batch));

  constructor(
    private readonly clock: Clock,
    private readonly signer: Signer | undefined,
    private readonly timeoutMs: number,
    /** The largest body sent: the callees' `maxBodyBytes` (the same option on both sides). */
    private readonly maxBodyBytes: number,
  ) {}

  async invoke(record: TransactionRecord, participant: RemoteParticipant, phase: SettlePhase): Promise<void> {
    const { endpoint } = participant;
    const answer = await this.#send(endpoint, participant.domain ?? '', {
      action: phase,
      globalId: record.globalId,
      xid: participant.xid,
    });
    if (answer.status >= 200 && answer.status < 300) return;
    const busy = answer.status === 409 ? busyIn(contentOf(answer)) : undefined;
    if (busy !== undefined) {
      throw new BusyError(
        participant.xid,
        busy.retryAfterMs,
        undefined,
        `${phase} sent to ${endpoint}: the branch is busy (${busy.message})`,
      );
    }
    throw new RemoteCommandError(endpoint, phase, answer.status, answer.text);
  }

  /** Asks the record that enlisted a branch, at `endpoint`, what it decided. */
  async query(endpoint: string, query: OutcomeQuery): Promise<OutcomeAnswer> {
    const answer = await this.#send(endpoint, query.domain, { action: 'query', ...query });
    const parsed = answer.status === 200 ? outcomeIn(contentOf(answer)) : undefined;
    if (parsed !== undefined) return parsed;
    throw new RemoteCommandError(
      endpoint,
      'query',
      answer.status,
      answer.status === 200 ? `not an outcome: ${answer.text.slice(0, 200)}` : answer.text,
    );
  }

  /** Queues a command for the end of this turn and resolves with its own answer. */
  async #send(endpoint: string, domain: string, command: BranchCommand): Promise<Answer> {
    try {
      return await this.#commands.add({ endpoint, command, body: JSON.stringify(command), domain });
    } catch (error) {
      if (error instanceof RemoteCommandError) throw error;
      throw new RemoteCommandError(endpoint, command.action, undefined, describeRequestError(error), error);
    }
  }

  /**
   * Sends a turn's commands, each callee's (`<domain> <endpoint>`: a batch is signed for one
   * domain) in as few requests as fit.
   */
  async #flush(queued: Queued[]): Promise<void> {
    const byCallee = new Map<string, Queued[]>();
    for (const q of queued) {
      const key = `${q.item.domain} ${q.item.endpoint}`;
      const commands = byCallee.get(key);
      if (commands === undefined) byCallee.set(key, [q]);
      else commands.push(q);
    }
    const sending: Promise<void>[] = [];
    for (const commands of byCallee.values()) {
      let target: Target;
      try {
        target = this.#target(commands[0]!.item.endpoint);
      } catch (error) {
        // Plain errors: `invoke` names each command's own action in its RemoteCommandError.
        for (const q of commands) q.reject(error);
        continue;
      }
      for (const batch of pack(commands, this.maxBodyBytes)) {
        sending.push(batch.length === 1 ? this.#sendOne(target, batch[0]!) : this.#sendBatch(target, batch));
      }
    }
    // Each send answers its own commands; wait for all, so a failure cannot cut another short.
    const failed = (await Promise.allSettled(sending)).find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #sendOne(target: Target, q: Queued): Promise<void> {
    const { command, body, domain } = q.item;
    const headers = this.#headers(body);
    if (this.signer !== undefined)
      headers[SIGNATURE_HEADER] = signCommand(command, this.signer, this.clock.now(), domain);
    try {
      q.resolve(await this.#post(target, headers, body, true));
    } catch (error) {
      q.reject(error);
    }
  }

  async #sendBatch(target: Target, batch: Queued[]): Promise<void> {
    const commands = batch.map((q) => q.item.command);
    const body = `{"commands":[${batch.map((q) => q.item.body).join(',')}]}`;
    const headers = this.#headers(body);
    if (this.signer !== undefined)
      headers[SIGNATURE_HEADER] = signCommands(
        commands,
        this.signer,
        this.clock.now(),
        batch[0]!.item.domain,
      );
    let answer: Answer & { readonly full: string };
    try {
      answer = await this.#post(target, headers, body, true);
    } catch (error) {
      for (const q of batch) q.reject(error);
      return;
    }
    // A callee that does not take this batch (400: it refused the batch form; 413: its
    // maxBodyBytes is smaller): each command is sent again on its own.
    if (answer.status === 400 || answer.status === 413) {
      await Promise.all(batch.map((q) => this.#sendOne(target, q)));
      return;
    }
    // Any other error of the request as a whole (401…) is every command's answer. A success
    // that is not a 200 with one result per command says nothing of them: none is done.
    const ok = answer.status >= 200 && answer.status < 300;
    const results = answer.status === 200 ? batchResults(answer.full, batch.length) : undefined;
    batch.forEach((q, i) => {
      q.resolve(results?.[i] ?? (ok ? MALFORMED_ANSWER : answer));
    });
  }

  #headers(body: string): Record<string, string | number> {
    return { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  }

  #target(endpoint: string): Target {
    let target = this.#targets.get(endpoint);
    if (target !== undefined) return target;
    let url: URL;
    try {
      url = new URL(`${endpoint}/${COMMAND_PATH}`);
    } catch (error) {
      throw new Error('the endpoint is not a URL', { cause: error });
    }
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:') throw new Error(`unsupported protocol ${url.protocol}`);
    target = {
      https,
      options: {
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        ...(url.username === ''
          ? {}
          : { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }),
        agent: https ? this.#https : this.#http,
      },
    };
    if (this.#targets.size >= MAX_TARGETS) this.#targets.clear();
    this.#targets.set(endpoint, target);
    return target;
  }

  /**
   * One request, limited to `timeoutMs` in all. A reset of a kept-alive connection (the server
   * closed it as it was reused) is sent once more on a fresh one: commands are idempotent.
   */
  #post(
    target: Target,
    headers: Record<string, string | number>,
    body: string,
    retry: boolean,
  ): Promise<Answer & { readonly full: string }> {
    return new Promise((resolve, reject) => {
      const req = (target.https ? httpsRequest : httpRequest)({ ...target.options, headers });
      const timer = setTimeout(() => {
        req.destroy(new CommandTimeoutError(this.timeoutMs));
      }, this.timeoutMs);
      req.once('response', (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        // Read in full, so the keep-alive connection goes back to the pool; kept up to the
        // largest batch answer.
        res.on('data', (chunk: string) => {
          if (text.length < MAX_KEPT_CHARS) text += chunk;
        });
        res.once('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            text: text.slice(0, MAX_ANSWER_CHARS),
            full: text,
            content: text,
          });
        });
        res.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      req.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (retry && req.reusedSocket && error.code === 'ECONNRESET') {
          this.#post(target, headers, body, false).then(resolve, reject);
        } else reject(error);
      });
      req.end(body);
    });
  }
}

class CommandTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'CommandTimeoutError';
  }
}

/** `request failed (ECONNREFUSED)`, or the error's message. */
function describeRequestError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? `request failed (${code})` : error.message;
}

/**
 * Splits one endpoint's commands into requests of at most `MAX_BATCH_COMMANDS` commands and
 * `maxBodyBytes` bytes of body, in the order they were issued.
 */
function pack(commands: readonly Queued[], maxBodyBytes: number): Queued[][] {
  const batches: Queued[][] = [];
  let batch: Queued[] = [];
  let bytes = 0;
  const envelope = '{"commands":[]}'.length;
  for (const q of commands) {
    const size = Buffer.byteLength(q.item.body) + 1;
    if (batch.length > 0 && (batch.length >= MAX_BATCH_COMMANDS || envelope + bytes + size > maxBodyBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(q);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** An answer's body, parsed: only the answers that are read beyond their status need it. */
function contentOf(answer: Answer): unknown {
  const { content } = answer;
  if (content === undefined) return undefined;
  if (typeof content !== 'string') return content;
  try {
    return JSON.parse(content);
  } catch {
    return undefined;
  }
}

/** A busy answer's retry hint and message, or `undefined` if `content` is not a busy answer. */
function busyIn(content: unknown): { readonly retryAfterMs: number; readonly message: string } | undefined {
  const body = content as
    | { error?: { code?: unknown; message?: unknown }; retryAfterMs?: unknown }
    | undefined;
  if (body?.error?.code !== 'TCC_BUSY') return undefined;
  const retryAfterMs = body.retryAfterMs;
  return {
    retryAfterMs:
      typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs >= 0
        ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)
        : DEFAULT_RETRY_AFTER_MS,
    message: typeof body.error.message === 'string' ? body.error.message : 'busy',
  };
}

const OUTCOMES: ReadonlySet<unknown> = new Set<BranchOutcome>(['confirm', 'cancel', 'pending']);

/** The outcome in a query's answer, or `undefined` if it holds none. */
function outcomeIn(content: unknown): OutcomeAnswer | undefined {
  const body = content as { outcome?: unknown; detail?: unknown } | undefined;
  if (!OUTCOMES.has(body?.outcome)) return undefined;
  return {
    outcome: body!.outcome as BranchOutcome,
    detail: typeof body!.detail === 'string' ? body!.detail : '',
  };
}

/** The per-command answers of a batch, or `undefined` if the answer is not one. */
function batchResults(text: string, count: number): Answer[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const results = (parsed as { results?: unknown } | null)?.results;
  if (!Array.isArray(results) || results.length !== count) return undefined;
  const answers: Answer[] = [];
  for (const result of results) {
    const status = (result as { status?: unknown } | null)?.status;
    if (typeof status !== 'number') return undefined;
    const { status: _, ...rest } = result as Record<string, unknown>;
    answers.push({ status, text: JSON.stringify(rest).slice(0, MAX_ANSWER_CHARS), content: rest });
  }
  return answers;
}
