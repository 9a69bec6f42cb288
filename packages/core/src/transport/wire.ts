import type { BranchOrigin } from '../transaction/active-transaction.js';
import { ID_PATTERN } from '../transaction/ids.js';
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
 * `tcc-context: 2;<globalId>;<xid>;<rootDomain>;<deadline>;<parentDomain>;<parentXid>;<parentEndpoint>`
 * and, when signed, `;<issuedAt>;<signature>`: compact, versioned, and never in `baggage`
 * (which is forwarded to third parties and must not carry something a callee acts on). The
 * parent is the record that enlisted the branch, which the branch asks for the outcome if no
 * command comes: its xid is empty when it is the root's (the globalId), its endpoint (URI
 * encoded) is empty when the parent has no `http.url`.
 */
export function encodeContextHeader(origin: BranchOrigin, signer: Signer | undefined, now: number): string {
  const { parent } = origin;
  const parentXid = parent.xid === origin.globalId ? '' : parent.xid;
  const endpoint = parent.endpoint === undefined ? '' : encodeURIComponent(parent.endpoint);
  const fields = `${VERSION};${origin.globalId};${origin.xid};${origin.rootDomain};${origin.deadline};${parent.domain};${parentXid};${endpoint}`;
  if (signer === undefined) return fields;
  const signed = `${fields};${now}`;
  return `${signed};${signer.sign(HEADER_PURPOSE, signed)}`;
}

/** Reads a context header; throws `BadRequestError` (malformed) or `UnauthorizedError` (signature). */
export function decodeContextHeader(
  value: string | string[],
  signer: Signer | undefined,
  now: number,
  maxSkewMs: number,
  maxBytes: number,
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
    checkSignature(
      signer,
      HEADER_PURPOSE,
      parts.slice(0, 9).join(';'),
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

/** `tcc-signature: <issuedAt>;<signature>` of a command's fields (not its bytes, so a framework's body parser does not matter). */
export function signCommand(command: BranchCommand, signer: Signer, now: number): string {
  return `${now};${signer.sign(COMMAND_PURPOSE, commandPayload(command, now))}`;
}

/**
 * `tcc-signature` of a batch: the whole list is signed as one, so no command can be added,
 * dropped, reordered or changed without the signature failing.
 */
export function signCommands(commands: readonly BranchCommand[], signer: Signer, now: number): string {
  return `${now};${signer.sign(BATCH_PURPOSE, batchPayload(commands, now))}`;
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
      batch ? batchPayload(commands, issuedAt) : commandPayload(commands[0]!, issuedAt),
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

function batchPayload(commands: readonly BranchCommand[], issuedAt: number | string): string {
  return `${issuedAt};${JSON.stringify(commands.map(signedFields))}`;
}

function commandPayload(command: BranchCommand, issuedAt: number | string): string {
  return `${issuedAt};${JSON.stringify(signedFields(command))}`;
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
