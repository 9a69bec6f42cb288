import { TccError } from '../base/errors.js';

/** A request to a TCC endpoint was not signed, or its signature was forged or expired (HTTP 401). */
export class UnauthorizedError extends TccError {
  constructor(message: string) {
    super('TCC_UNAUTHORIZED', message);
  }
}

/** A malformed context header or command, or one over the size limits (HTTP 400, 413). */
export class BadRequestError extends TccError {
  /** The HTTP status it is answered with: 400, or 405 (not a POST) and 413 (too large). */
  readonly status: number;

  constructor(message: string, status = 400) {
    super('TCC_BAD_REQUEST', message);
    this.status = status;
  }
}

/**
 * A remote try answered with an error status, or could not be reached. Inside a transaction
 * it dooms the transaction, like a local try that throws. `remoteCode` is the `code` of the
 * callee's `{ error: { code } }` answer, when it sent one.
 */
export class RemoteCallError extends TccError {
  readonly url: string;
  /** The remote's HTTP status, or `undefined` when no answer came (connection refused, reset). */
  readonly status: number | undefined;
  readonly remoteCode: string | undefined;
  /** The answer's body: parsed JSON, or text. */
  readonly body: unknown;

  constructor(url: string, status: number | undefined, body: unknown, cause?: unknown) {
    const remoteCode = codeOf(body);
    super(
      'TCC_REMOTE_CALL_FAILED',
      status === undefined
        ? `${url} could not be reached: ${describeFetchError(cause)}`
        : `${url} answered ${status}${remoteCode === undefined ? '' : ` ${remoteCode}`}${messageIn(body)}`,
      cause === undefined ? undefined : { cause },
    );
    this.url = url;
    this.status = status;
    this.remoteCode = remoteCode;
    this.body = body;
  }
}

/**
 * A remote try did not answer in time. It may still be running remotely: the transaction is
 * cancelled at once unless the caller lists this class in `delayCancelOn`, which leaves the
 * cancel to recovery after the deadline (when the callee refuses the try if it is late).
 */
export class RemoteTimeoutError extends TccError {
  readonly url: string;

  constructor(url: string, timeoutMs: number) {
    super('TCC_REMOTE_TIMEOUT', `${url} did not answer within ${timeoutMs} ms`);
    this.url = url;
  }
}

/** A confirm or cancel sent to a remote branch failed; recovery sends it again. */
export class RemoteCommandError extends TccError {
  readonly endpoint: string;
  /** The remote's HTTP status, or `undefined` when no answer came. */
  readonly status: number | undefined;

  constructor(endpoint: string, action: string, status: number | undefined, detail: string, cause?: unknown) {
    super(
      'TCC_REMOTE_COMMAND_FAILED',
      `${action} sent to ${endpoint} failed${status === undefined ? '' : ` (${status})`}: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.endpoint = endpoint;
    this.status = status;
  }
}

function codeOf(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageIn(body: unknown): string {
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
  if (typeof message === 'string') return `: ${message}`;
  if (typeof body === 'string' && body !== '') return `: ${body.slice(0, 200)}`;
  return '';
}

/** `fetch failed (ECONNREFUSED)`: undici hides the reason in `cause`. */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const reason =
    typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : '';
  return reason === '' ? error.message : `${error.message} (${reason})`;
}

/**
 * A branch cannot ask the record that enlisted it for the outcome: no URL is known for that
 * domain (the parent set no `http.url`, and this service has no `http.peers` entry for it).
 */
export class UnknownPeerError extends TccError {
  readonly domain: string;

  constructor(domain: string, xid: string) {
    super(
      'TCC_UNKNOWN_PEER',
      `branch ${xid} cannot ask domain ${domain} for its outcome: no URL is known for it` +
        ` (set http.url on that service, or add ${domain} to http.peers on this one)`,
    );
    this.domain = domain;
  }
}
