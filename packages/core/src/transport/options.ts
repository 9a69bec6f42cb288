import { describeValue, InvalidOptionError, requirePositiveInteger } from '../tcc-options-error.js';

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
  /** Largest `tcc-context` header accepted, in bytes (400 above). Default 512. */
  maxHeaderBytes?: number;
}

export interface ResolvedHttpTransportOptions {
  readonly secret: string | Buffer | undefined;
  readonly maxClockSkewMs: number;
  readonly commandTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
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
    maxHeaderBytes: requirePositiveInteger(o.maxHeaderBytes ?? 512, `${where}.maxHeaderBytes`),
  };
}
