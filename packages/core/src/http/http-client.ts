import { context, propagation } from '@opentelemetry/api';
import { describeValue, requirePositiveInteger } from '../base/checks.js';
import type { Clock } from '../base/clock.js';
import { InvalidOptionError } from '../base/errors.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import { RemoteCallError, RemoteTimeoutError } from './errors.js';
import type { Signer } from './signing.js';
import {
  bodyDigest,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  encodeContextHeader,
  type RequestBinding,
} from './wire.js';

/** Options of `tcc.http(baseUrl, options)`. */
export interface HttpClientOptions {
  /**
   * Time limit of one request, in ms. Inside a transaction a request never outlives the
   * root's deadline either. A try that times out is a `RemoteTimeoutError`.
   */
  timeoutMs?: number;
  /** Headers sent with every request (e.g. authorization of the business API). */
  headers?: Record<string, string>;
  /**
   * The domain of the service at `baseUrl` (its `new Tcc({ domain })`). Required when this
   * runtime has an `http.secret`: a signed try names the service it is for, and is refused by
   * any other service it is replayed to; the commands sent to its branch are signed for it too.
   */
  domain?: string;
}

const DOMAIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** What the client needs of its `Tcc`. */
export interface HttpCaller {
  readonly manager: TransactionManager;
  readonly clock: Clock;
  readonly signer: Signer | undefined;
}

const headerSetter = {
  set(carrier: Headers, key: string, value: string): void {
    if (!carrier.has(key)) carrier.set(key, value);
  },
};

/**
 * An HTTP client for one remote service (`tcc.http(baseUrl)`). Inside a transaction each
 * request enlists the service as a remote participant, written to the log before the request
 * leaves, and carries the `tcc-context` header so the callee's `@Compensable` methods join as a
 * branch; the participant is tried when the answer is a 2xx, and a failure dooms the
 * transaction. Outside a transaction it is a plain client.
 */
export class TccHttpClient {
  readonly baseUrl: string;
  readonly #base: URL;
  readonly #timeoutMs: number | undefined;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #domain: string | undefined;

  constructor(
    private readonly caller: HttpCaller,
    baseUrl: string,
    options: HttpClientOptions = {},
  ) {
    let base: URL;
    try {
      base = new URL(baseUrl);
    } catch {
      throw new InvalidOptionError(
        `tcc.http: baseUrl must be an absolute URL, got ${JSON.stringify(baseUrl)}`,
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new InvalidOptionError(`tcc.http: baseUrl must be http or https, got ${base.protocol}`);
    }
    // No trailing slash: the endpoint is stored in records and `.tcc` is appended to it.
    this.baseUrl = base.href.replace(/\/+$/, '');
    this.#base = new URL(`${this.baseUrl}/`);
    this.#timeoutMs =
      options.timeoutMs === undefined
        ? undefined
        : requirePositiveInteger(options.timeoutMs, 'tcc.http: timeoutMs');
    this.#headers = { ...options.headers };
    const { domain } = options;
    if (domain !== undefined && (typeof domain !== 'string' || !DOMAIN.test(domain))) {
      throw new InvalidOptionError(
        `tcc.http: domain must be a service's domain name, got ${describeValue(domain)}`,
      );
    }
    if (domain === undefined && caller.signer !== undefined) {
      throw new InvalidOptionError(
        `tcc.http(${JSON.stringify(this.baseUrl)}): options.domain is required when http.secret is set` +
          " (a signed try names the service it is for), e.g. tcc.http(url, { domain: 'stock' })",
      );
    }
    this.#domain = domain;
  }

  /** POSTs `body` as JSON and returns the parsed answer; a non-2xx answer throws `RemoteCallError`. */
  post<T = unknown>(path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    return this.#json('POST', path, body, init);
  }

  /** PUTs `body` as JSON and returns the parsed answer; a non-2xx answer throws `RemoteCallError`. */
  put<T = unknown>(path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    return this.#json('PUT', path, body, init);
  }

  /**
   * `fetch` relative to the base URL. A non-2xx answer is returned (its body is the caller's
   * to read) but still dooms the transaction; a network failure or timeout throws.
   */
  async fetch(path: string | URL, init: RequestInit = {}): Promise<Response> {
    const { response, finish } = await this.#send(path, init);
    finish(response.ok ? undefined : new RemoteCallError(response.url, response.status, undefined));
    return response;
  }

  async #json<T>(method: string, path: string, body: unknown, init: RequestInit): Promise<T> {
    const headers = new Headers(init.headers);
    if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const { response, finish, url, deadline } = await this.#send(path, {
      ...init,
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    let parsed: unknown;
    try {
      const text = await response.text();
      parsed = text === '' ? undefined : parseMaybeJson(text, response.headers.get('content-type'));
    } catch (error) {
      const failure =
        deadline?.expired === true
          ? new RemoteTimeoutError(url, deadline.ms)
          : new RemoteCallError(url, undefined, undefined, error);
      finish(failure);
      throw failure;
    } finally {
      // The body is read: the time limit has nothing left to cover. (`fetch` leaves the timer,
      // unref'd, to cover the body its caller reads.)
      deadline?.clear();
    }
    if (!response.ok) {
      const failure = new RemoteCallError(url, response.status, parsed);
      finish(failure);
      throw failure;
    }
    finish(undefined);
    return parsed as T;
  }

  async #send(
    path: string | URL,
    init: RequestInit,
  ): Promise<{
    response: Response;
    finish: (error: unknown) => void;
    url: string;
    deadline: Deadline | undefined;
  }> {
    const { manager, clock, signer } = this.caller;
    const url = new URL(typeof path === 'string' ? path.replace(/^\/+/, '') : path, this.#base).href;
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.#headers))
      if (!headers.has(name)) headers.set(name, value);
    // Refused before anything is enlisted: a body that cannot be signed must not begin a branch.
    const digest = signer !== undefined && manager.inTry() ? bodyDigest(bodyBytes(init.body)) : undefined;
    const enlisted = await manager.enlistRemote(this.baseUrl, this.#domain);
    let timeoutMs = this.#timeoutMs;
    if (enlisted !== undefined) {
      const now = clock.now();
      let binding: RequestBinding | undefined;
      if (digest !== undefined) {
        const target = new URL(url);
        binding = {
          domain: this.#domain ?? '',
          method: init.method ?? 'GET',
          path: `${target.pathname}${target.search}`,
          digest,
        };
        headers.set(DIGEST_HEADER, digest);
      }
      headers.set(CONTEXT_HEADER, encodeContextHeader(enlisted.origin, signer, now, binding));
      const left = Math.max(1, enlisted.origin.deadline - now);
      timeoutMs = timeoutMs === undefined ? left : Math.min(timeoutMs, left);
    }
    // W3C traceparent next to the context header, if an OpenTelemetry propagator is installed.
    propagation.inject(context.active(), headers, headerSetter);
    const deadline = timeoutMs === undefined ? undefined : new Deadline(timeoutMs, init.signal);
    let response: Response;
    try {
      const signal = deadline?.signal ?? init.signal;
      response = await fetch(url, { ...init, headers, ...(signal ? { signal } : {}) });
    } catch (error) {
      deadline?.clear();
      const failure =
        deadline?.expired === true && timeoutMs !== undefined
          ? new RemoteTimeoutError(url, timeoutMs)
          : new RemoteCallError(url, undefined, undefined, error);
      enlisted?.finish(failure);
      throw failure;
    }
    return { response, finish: (error) => enlisted?.finish(error), url, deadline };
  }
}

/**
 * Aborts a request after `ms` (and when the caller's own signal aborts). A controller and a
 * timer rather than `AbortSignal.timeout`, whose transferable signal was a visible part of a
 * root's CPU time per remote try; `AbortSignal.any` only when the caller gave a signal (it
 * holds the caller's signal weakly, where a listener would stay on it for good).
 */
class Deadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly signal: AbortSignal;
  expired = false;

  constructor(
    readonly ms: number,
    outer: AbortSignal | null | undefined,
  ) {
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.#controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
    }, ms);
    // A body the caller never reads must not keep the process alive.
    this.#timer.unref();
    this.signal = outer ? AbortSignal.any([outer, this.#controller.signal]) : this.#controller.signal;
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** The bytes of a request body as `fetch` sends them, for its digest. */
function bodyBytes(body: RequestInit['body']): string | Uint8Array {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new InvalidOptionError(
    `a signed try's body must be a string, bytes or URLSearchParams (its digest is signed), got ${describeValue(body)}`,
  );
}

function parseMaybeJson(text: string, contentType: string | null): unknown {
  if (contentType?.includes('json') !== true) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Options of {@link tccFetch}. */
export interface TccFetchOptions extends Omit<HttpClientOptions, 'domain'> {
  /** Base URL of the callee's TCC endpoint for a request URL. Default: the URL's origin. */
  endpoint?: (url: URL) => string;
  /** The callee's domain for a request URL (required with `http.secret`, see `HttpClientOptions.domain`). */
  domain?: string | ((url: URL) => string);
}

/**
 * A `fetch` for code that calls `fetch` directly: inside a transaction of `tcc` each request
 * enlists its service (by default the URL's origin, whose `<origin>/.tcc` takes the commands)
 * like `tcc.http(...).fetch`; outside one it is plain `fetch`.
 *
 * @example
 * const fetch = tccFetch(tcc);
 * await tcc.transaction(async () => { await fetch('http://capital:4001/freeze', { method: 'POST', body }); });
 */
export function tccFetch(
  tcc: { http(baseUrl: string, options?: HttpClientOptions): TccHttpClient },
  options: TccFetchOptions = {},
): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const { endpoint = (url: URL) => url.origin, domain, ...clientOptions } = options;
  const clients = new Map<string, TccHttpClient>();
  return (input, init) => {
    const url = new URL(input);
    const base = endpoint(url);
    const target = typeof domain === 'function' ? domain(url) : domain;
    const key = `${target ?? ''} ${base}`;
    let client = clients.get(key);
    if (client === undefined) {
      client = tcc.http(base, target === undefined ? clientOptions : { ...clientOptions, domain: target });
      clients.set(key, client);
    }
    return client.fetch(url, init);
  };
}
