import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Clock } from '../clock.js';
import type { RemoteInvoker, SettlePhase } from '../transaction/phase-driver.js';
import type { RemoteParticipant, TransactionRecord } from '../transaction/record.js';
import { RemoteCommandError } from './errors.js';
import type { Signer } from './signing.js';
import { COMMAND_PATH, SIGNATURE_HEADER, signCommand } from './wire.js';

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
 * Sends confirm and cancel to remote branches: `POST <endpoint>/.tcc`, through node:http with
 * keep-alive agents of its own. Not `fetch`: a command is a small fixed request, and node:http
 * writes its head and body in one write where `fetch` streams the body after the head, which
 * made the commands the larger part of a root's CPU time per transaction. Each endpoint's URL
 * is parsed once.
 */
export class HttpRemoteInvoker implements RemoteInvoker {
  readonly #targets = new Map<string, Target>();
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });

  constructor(
    private readonly clock: Clock,
    private readonly signer: Signer | undefined,
    private readonly timeoutMs: number,
  ) {}

  async invoke(record: TransactionRecord, participant: RemoteParticipant, phase: SettlePhase): Promise<void> {
    const command = { action: phase, globalId: record.globalId, xid: participant.xid };
    const body = JSON.stringify(command);
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    if (this.signer !== undefined)
      headers[SIGNATURE_HEADER] = signCommand(command, this.signer, this.clock.now());
    const target = this.#target(participant.endpoint, phase);
    let answer: { status: number; text: string };
    try {
      answer = await this.#post(target, headers, body, true);
    } catch (error) {
      throw new RemoteCommandError(
        participant.endpoint,
        phase,
        undefined,
        describeRequestError(error),
        error,
      );
    }
    if (answer.status < 200 || answer.status >= 300)
      throw new RemoteCommandError(participant.endpoint, phase, answer.status, answer.text);
  }

  /** Closes the idle keep-alive connections. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }

  #target(endpoint: string, phase: SettlePhase): Target {
    let target = this.#targets.get(endpoint);
    if (target !== undefined) return target;
    let url: URL;
    try {
      url = new URL(`${endpoint}/${COMMAND_PATH}`);
    } catch (error) {
      throw new RemoteCommandError(endpoint, phase, undefined, 'the endpoint is not a URL', error);
    }
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:') {
      throw new RemoteCommandError(endpoint, phase, undefined, `unsupported protocol ${url.protocol}`);
    }
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
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = (target.https ? httpsRequest : httpRequest)({ ...target.options, headers });
      const timer = setTimeout(() => {
        req.destroy(new CommandTimeoutError(this.timeoutMs));
      }, this.timeoutMs);
      req.once('response', (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        // Read in full, so the keep-alive connection goes back to the pool.
        res.on('data', (chunk: string) => {
          if (text.length < MAX_ANSWER_CHARS) text += chunk;
        });
        res.once('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: text.slice(0, MAX_ANSWER_CHARS) });
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
