import { createHash } from 'node:crypto';
import { ID_PATTERN } from '../base/ids.js';
import type { BranchOrigin } from '../transaction/active-transaction.js';
import type { OutcomeQuery } from '../transaction/outcome-reporter.js';
import type { SettlePhase } from '../transaction/phase-driver.js';
import { BadRequestError, UnauthorizedError } from './errors.js';
import type { Signer } from './signing.js';

/** Request header carrying the transaction to a callee, next to W3C `traceparent`. */
export const CONTEXT_HEADER = 'tcc-context';
/** Request header carrying the signature of a `.tcc` command. */
export const SIGNATURE_HEADER = 'tcc-signature';
/** Path of the TCC endpoint below a service's base path. */
export const COMMAND_PATH = '.tcc';
/** Request header carrying the digest of a signed try's body (RFC 9530). */
export const DIGEST_HEADER = 'content-digest';

const VERSION = '2';
const DOMAIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** Milliseconds since the epoch, at most 13 digits: a date before the year 2286. */
const TIME = /^[0-9]{1,13}$/;
const HEADER_PURPOSE = 'tcc-context';
const COMMAND_PURPOSE = 'tcc-command';
const BATCH_PURPOSE = 'tcc-commands';
/** Longest parent endpoint a context header may carry. */
const MAX_ENDPOINT_CHARS = 512;
/** Most commands one `.tcc` request may carry (`{ commands: [...] }`). */
export const MAX_BATCH_COMMANDS = 64;
/** Longest error message in one result of a batch answer: the caller reads a bounded answer. */
export const MAX_RESULT_MESSAGE_CHARS = 500;

/**
 * What a `.tcc` request carries: the root's (or a parent branch's) `confirm` or `cancel` of a
 * branch, or a branch's `query` to the record that enlisted it (`xid`) about its outcome.
 */
export type BranchCommand =
  | { readonly action: SettlePhase; readonly globalId: string; readonly xid: string }
  | ({ readonly action: 'query' } & OutcomeQuery);

/**
 * What a signed try is for, signed with its context header: the service it is sent to (its
 * domain: a header replayed to another service fails there), the request's method and path,
 * and the digest of its body (a changed body fails). The callee checks each against what it
 * is and what it received.
 */
export interface RequestBinding {
  /** Domain of the callee. */
  readonly domain: string;
  readonly method: string;
  /** The request's path and query, as sent (`/hold?fast=1`). */
  readonly path: string;
  /** `sha-256=:<base64>:` of the body (RFC 9530 `Content-Digest`), sent in `content-digest`. */
  readonly digest: string;
}

/** The `content-digest` value of a body: `sha-256=:<base64 of its SHA-256>:`. */
export function bodyDigest(body: string | Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/**
 * `tcc-context: 2;<globalId>;<xid>;<rootDomain>;<deadline>;<parentDomain>;<parentXid>;<parentEndpoint>`
 * and, when signed, `;<issuedAt>;<signature>`: compact, versioned, and never in `baggage`
 * (which is forwarded to third parties and must not carry something a callee acts on). The
 * parent is the record that enlisted the branch, which the branch asks for the outcome if no
 * command comes: its xid is empty when it is the root's (the globalId), its endpoint (URI
 * encoded) is empty when the parent has no `http.url`.
 */
export function encodeContextHeader(
  origin: BranchOrigin,
  signer: Signer | undefined,
  now: number,
  binding?: RequestBinding,
): string {
  const { parent } = origin;
  const parentXid = parent.xid === origin.globalId ? '' : parent.xid;
  const endpoint = parent.endpoint === undefined ? '' : encodeURIComponent(parent.endpoint);
  const fields = `${VERSION};${origin.globalId};${origin.xid};${origin.rootDomain};${origin.deadline};${parent.domain};${parentXid};${endpoint}`;
  if (signer === undefined) return fields;
  if (binding === undefined) throw new TypeError('a signed context header needs the request it is for');
  const signed = `${fields};${now}`;
  return `${signed};${signer.sign(HEADER_PURPOSE, headerPayload(signed, binding))}`;
}

/** The signed text of a context header: its fields and issuedAt, and the request it is bound to. */
function headerPayload(signed: string, b: RequestBinding): string {
  return `${signed}\n${b.domain}\n${b.method.toUpperCase()}\n${b.path}\n${b.digest}`;
}

/**
 * Reads a context header; throws `BadRequestError` (malformed) or `UnauthorizedError`
 * (signature). With a signer, `binding` is the request as this service received it: its own
 * domain, the method and path, and the `content-digest` the caller claimed (the body itself is
 * checked against that digest as it is read).
 */
export function decodeContextHeader(
  value: string | string[],
  signer: Signer | undefined,
  now: number,
  maxSkewMs: number,
  maxBytes: number,
  binding?: Omit<RequestBinding, 'digest'> & { readonly digest: string | string[] | undefined },
): BranchOrigin {
  if (Array.isArray(value)) throw new BadRequestError(`${CONTEXT_HEADER}: sent more than once`);
  if (value.length > maxBytes) {
    throw new BadRequestError(`${CONTEXT_HEADER}: ${value.length} bytes, over the limit of ${maxBytes}`);
  }
  const parts = value.split(';');
  if (parts[0] !== VERSION) {
    throw new BadRequestError(
      `${CONTEXT_HEADER}: unsupported version ${JSON.stringify(parts[0]?.slice(0, 8))} (this release reads ${VERSION})`,
    );
  }
  if (parts.length !== 8 && parts.length !== 10) {
    throw new BadRequestError(
      `${CONTEXT_HEADER}: expected 8 or 10 fields separated by ';', got ${parts.length}`,
    );
  }
  const [, globalId, xid, rootDomain, deadline, parentDomain, parentXid, endpoint, issuedAt, signature] =
    parts as [string, string, string, string, string, string, string, string, string?, string?];
  if (!ID_PATTERN.test(globalId)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed globalId`);
  if (!ID_PATTERN.test(xid)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed xid`);
  if (!DOMAIN.test(rootDomain)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed root domain`);
  if (!TIME.test(deadline)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed deadline`);
  if (!DOMAIN.test(parentDomain)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed parent domain`);
  if (parentXid !== '' && !ID_PATTERN.test(parentXid))
    throw new BadRequestError(`${CONTEXT_HEADER}: malformed parent xid`);
  const parentEndpoint = endpoint === '' ? undefined : decodeEndpoint(endpoint);
  if (signer !== undefined) {
    if (issuedAt === undefined || signature === undefined) {
      throw new UnauthorizedError(`${CONTEXT_HEADER}: not signed, and this service requires signatures`);
    }
    const digest = binding?.digest;
    if (binding === undefined || typeof digest !== 'string') {
      throw new UnauthorizedError(`${DIGEST_HEADER}: missing, and this service requires signed tries`);
    }
    checkSignature(
      signer,
      HEADER_PURPOSE,
      headerPayload(parts.slice(0, 9).join(';'), { ...binding, digest }),
      issuedAt,
      signature,
      now,
      maxSkewMs,
      CONTEXT_HEADER,
    );
  }
  const parent = { domain: parentDomain, xid: parentXid === '' ? globalId : parentXid };
  return {
    globalId,
    xid,
    rootDomain,
    deadline: Number(deadline),
    parent: parentEndpoint === undefined ? parent : { ...parent, endpoint: parentEndpoint },
  };
}

/** The parent endpoint of a context header: an http(s) URL, URI-encoded. */
function decodeEndpoint(encoded: string): string {
  let url: URL;
  try {
    if (encoded.length > MAX_ENDPOINT_CHARS) throw new Error('too long');
    url = new URL(decodeURIComponent(encoded));
  } catch {
    throw new BadRequestError(`${CONTEXT_HEADER}: malformed parent endpoint`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BadRequestError(`${CONTEXT_HEADER}: parent endpoint must be http or https`);
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * `tcc-signature: <issuedAt>;<signature>` of a command's fields (not its bytes, so a framework's
 * body parser does not matter) and of the domain of the service it is for (`domain`), so it is
 * refused by any other service it is replayed to.
 */
export function signCommand(command: BranchCommand, signer: Signer, now: number, domain: string): string {
  return `${now};${signer.sign(COMMAND_PURPOSE, commandPayload(command, now, domain))}`;
}

/**
 * `tcc-signature` of a batch: the whole list is signed as one, with the domain it is for, so no
 * command can be added, dropped, reordered or changed, nor the batch sent elsewhere, without
 * the signature failing.
 */
export function signCommands(
  commands: readonly BranchCommand[],
  signer: Signer,
  now: number,
  domain: string,
): string {
  return `${now};${signer.sign(BATCH_PURPOSE, batchPayload(commands, now, domain))}`;
}

/**
 * Validates a `.tcc` body (raw bytes, or an object a framework already parsed): one command
 * `{ action, globalId, xid }`, or a batch `{ commands: [...] }` of up to `MAX_BATCH_COMMANDS`,
 * and, with a signer, its signature header. A batch is refused as a whole if any command in it
 * is malformed. Throws `BadRequestError` or `UnauthorizedError`.
 */
export function readCommands(
  body: Buffer | object,
  signature: string | string[] | undefined,
  signer: Signer | undefined,
  now: number,
  maxSkewMs: number,
  /** This service's domain: a command signed for another one is refused. */
  domain: string,
): { readonly commands: BranchCommand[]; readonly batch: boolean } {
  let parsed: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new BadRequestError(`malformed JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new BadRequestError('expected a JSON object { action, globalId, xid } or { commands: [...] }');
  }
  const batch = 'commands' in parsed;
  let fields: Record<string, unknown>[];
  if (batch) {
    const list = (parsed as { commands: unknown }).commands;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH_COMMANDS) {
      throw new BadRequestError(`commands must be an array of 1 to ${MAX_BATCH_COMMANDS} commands`);
    }
    fields = list.map((item, i) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        throw new BadRequestError(`commands[${i}]: expected an object { action, globalId, xid }`);
      }
      return item as Record<string, unknown>;
    });
  } else {
    fields = [parsed as Record<string, unknown>];
  }
  const commands = fields.map((f, i) => commandShape(f, batch ? `commands[${i}].` : ''));
  if (signer !== undefined) {
    if (typeof signature !== 'string') {
      throw new UnauthorizedError(`${SIGNATURE_HEADER}: missing, and this service requires signatures`);
    }
    const [issuedAt = '', sig = '', ...rest] = signature.split(';');
    if (rest.length > 0) throw new UnauthorizedError(`${SIGNATURE_HEADER}: malformed`);
    checkSignature(
      signer,
      batch ? BATCH_PURPOSE : COMMAND_PURPOSE,
      batch ? batchPayload(commands, issuedAt, domain) : commandPayload(commands[0]!, issuedAt, domain),
      issuedAt,
      sig,
      now,
      maxSkewMs,
      SIGNATURE_HEADER,
    );
  }
  // Checked after the signature, so an unsigned caller learns nothing about the service.
  for (const [i, { action }] of commands.entries()) {
    if (action !== 'confirm' && action !== 'cancel' && action !== 'query') {
      throw new BadRequestError(
        `${batch ? `commands[${i}]: ` : ''}unknown action ${JSON.stringify(String(action).slice(0, 32))} (confirm, cancel or query)`,
      );
    }
  }
  return { commands, batch };
}

/**
 * The fields of one command, typed; the action is checked once the signature has been. A query
 * also names the branch asking and the domain it asks.
 */
function commandShape(fields: Record<string, unknown>, where: string): BranchCommand {
  const { action, globalId, xid, branch, domain } = fields;
  for (const [name, value] of [
    ['action', action],
    ['globalId', globalId],
    ['xid', xid],
  ] as const) {
    if (typeof value !== 'string') throw new BadRequestError(`${where}${name} must be a string`);
  }
  if (!ID_PATTERN.test(globalId as string)) throw new BadRequestError(`${where}globalId is malformed`);
  if (!ID_PATTERN.test(xid as string)) throw new BadRequestError(`${where}xid is malformed`);
  if (action !== 'query') {
    return { action: action as SettlePhase, globalId: globalId as string, xid: xid as string };
  }
  if (typeof branch !== 'string' || !ID_PATTERN.test(branch))
    throw new BadRequestError(`${where}branch must be the xid of the branch asking`);
  if (typeof domain !== 'string' || !DOMAIN.test(domain))
    throw new BadRequestError(`${where}domain must be the domain asked`);
  return { action, globalId: globalId as string, xid: xid as string, branch, domain };
}

/** A command's fields in a fixed order, for its signature. */
function signedFields(c: BranchCommand): string[] {
  return c.action === 'query'
    ? [c.action, c.globalId, c.xid, c.branch, c.domain]
    : [c.action, c.globalId, c.xid];
}

// JSON: the action is not yet checked when these are computed, so no separator can be trusted.

function batchPayload(commands: readonly BranchCommand[], issuedAt: number | string, domain: string): string {
  return `${issuedAt};${domain};${JSON.stringify(commands.map(signedFields))}`;
}

function commandPayload(command: BranchCommand, issuedAt: number | string, domain: string): string {
  return `${issuedAt};${domain};${JSON.stringify(signedFields(command))}`;
}

function checkSignature(
  signer: Signer,
  purpose: string,
  payload: string,
  issuedAt: string,
  signature: string,
  now: number,
  maxSkewMs: number,
  where: string,
): void {
  if (!TIME.test(issuedAt)) throw new UnauthorizedError(`${where}: malformed signature time`);
  if (!signer.verify(purpose, payload, signature)) throw new UnauthorizedError(`${where}: bad signature`);
  // Checked after the signature: an attacker cannot learn the clock window from forged times.
  if (Math.abs(now - Number(issuedAt)) > maxSkewMs) {
    throw new UnauthorizedError(`${where}: signature expired (signed ${now - Number(issuedAt)} ms ago)`);
  }
}
