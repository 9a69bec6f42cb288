import { describeValue, requirePositiveInteger } from '../base/checks.js';
import { InvalidOptionError } from '../base/errors.js';

/** Settings of the HTTP transport, on `new Tcc({ http })`; the same on callers and callees. */
export interface HttpTransportOptions {
  /**
   * Shared secret: context headers and `.tcc` commands are HMAC-SHA256 signed with it, and a
   * callee with a secret refuses (401) anything unsigned, forged or older than `maxClockSkewMs`.
   */
  secret?: string | Buffer;
  /** How old (or how far in the future) a signature may be, in ms. Default 60,000. */
  maxClockSkewMs?: number;
  /** Time limit of a confirm or cancel sent to a remote branch, in ms. Default 10,000. */
  commandTimeoutMs?: number;
  /**
   * Largest `.tcc` body accepted, in bytes (413 above); a caller packs its batches of commands
   * to fit it. Default 20,480 (a full batch of 64 commands with the longest ids allowed).
   */
  maxBodyBytes?: number;
  /** Largest `tcc-context` header accepted, in bytes (400 above). Default 1,024. */
  maxHeaderBytes?: number;
  /**
   * Base URL at which this service serves `.tcc` (where `tcc.httpHandler()` is mounted, as
   * other services reach it), e.g. `http://order:4000`. Sent to the branches this service
   * enlists, which ask it for the outcome when its confirm or cancel never comes (a crash, a
   * lost log). Without it (and without `peers` on the callee) such a branch waits, and is parked
   * for an operator after `recovery.maxRetries`.
   */
  url?: string;
  /**
   * Where to ask other domains for outcomes, by domain: `{ order: 'http://order:4000' }`. When
   * given, the URLs callers send in their context headers are never used: a branch only ever
   * asks the services listed here (a domain not listed cannot be asked: `TCC_UNKNOWN_PEER`).
   */
  peers?: Readonly<Record<string, string>>;
}

export interface ResolvedHttpTransportOptions {
  readonly secret: string | Buffer | undefined;
  readonly maxClockSkewMs: number;
  readonly commandTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly url: string | undefined;
  readonly peers: ReadonlyMap<string, string>;
}

export function resolveHttpTransportOptions(
  options: HttpTransportOptions | undefined,
  where: string,
): ResolvedHttpTransportOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new InvalidOptionError(`${where} must be an object, got ${describeValue(options)}`);
  }
  const o = options ?? {};
  const { secret } = o;
  if (
    secret !== undefined &&
    !((typeof secret === 'string' || Buffer.isBuffer(secret)) && secret.length >= 16)
  ) {
    throw new InvalidOptionError(`${where}.secret must be a string or Buffer of at least 16 characters`);
  }
  return {
    secret,
    maxClockSkewMs: requirePositiveInteger(o.maxClockSkewMs ?? 60_000, `${where}.maxClockSkewMs`),
    commandTimeoutMs: requirePositiveInteger(o.commandTimeoutMs ?? 10_000, `${where}.commandTimeoutMs`),
    maxBodyBytes: requirePositiveInteger(o.maxBodyBytes ?? 20_480, `${where}.maxBodyBytes`),
    maxHeaderBytes: requirePositiveInteger(o.maxHeaderBytes ?? 1_024, `${where}.maxHeaderBytes`),
    url: o.url === undefined ? undefined : requireBaseUrl(o.url, `${where}.url`),
    peers: resolvePeers(o.peers, `${where}.peers`),
  };
}

/** An absolute http(s) URL, without its trailing slash (`.tcc` is appended to it). */
export function requireBaseUrl(value: unknown, where: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new InvalidOptionError(
      `${where} must be an absolute http or https URL, got ${describeValue(value)}`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

function resolvePeers(peers: unknown, where: string): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  if (peers === undefined) return map;
  if (peers === null || typeof peers !== 'object' || Array.isArray(peers)) {
    throw new InvalidOptionError(`${where} must be an object of domain: URL, got ${describeValue(peers)}`);
  }
  for (const [domain, url] of Object.entries(peers))
    map.set(domain, requireBaseUrl(url, `${where}.${domain}`));
  return map;
}
