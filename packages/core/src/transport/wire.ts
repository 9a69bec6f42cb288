import type { BranchOrigin } from '../transaction/active-transaction.js';
import type { SettlePhase } from '../transaction/phase-driver.js';
import { BadRequestError, UnauthorizedError } from './errors.js';
import type { Signer } from './signing.js';

/** Request header carrying the transaction to a callee, next to W3C `traceparent`. */
export const CONTEXT_HEADER = 'tcc-context';
/** Request header carrying the signature of a `.tcc` command. */
export const SIGNATURE_HEADER = 'tcc-signature';
/** Path of the TCC endpoint below a service's base path. */
export const COMMAND_PATH = '.tcc';

const VERSION = '1';
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const DOMAIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const TIME = /^[0-9]{1,16}$/;
const HEADER_PURPOSE = 'tcc-context';
const COMMAND_PURPOSE = 'tcc-command';

/** A confirm or cancel sent by the root (or a parent branch) to a branch. */
export interface BranchCommand {
  readonly action: SettlePhase;
  readonly globalId: string;
  readonly xid: string;
}

/**
 * `tcc-context: 1;<globalId>;<xid>;<rootDomain>;<deadline>` and, when signed,
 * `;<issuedAt>;<signature>`: compact, versioned, and never in `baggage` (which is forwarded to
 * third parties and must not carry something a callee acts on).
 */
export function encodeContextHeader(origin: BranchOrigin, signer: Signer | undefined, now: number): string {
  const fields = `${VERSION};${origin.globalId};${origin.xid};${origin.rootDomain};${origin.deadline}`;
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
      `${CONTEXT_HEADER}: unsupported version ${JSON.stringify(parts[0]?.slice(0, 8))}`,
    );
  }
  if (parts.length !== 5 && parts.length !== 7) {
    throw new BadRequestError(
      `${CONTEXT_HEADER}: expected 5 or 7 fields separated by ';', got ${parts.length}`,
    );
  }
  const [, globalId, xid, rootDomain, deadline, issuedAt, signature] = parts as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
    string | undefined,
  ];
  if (!ID.test(globalId)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed globalId`);
  if (!ID.test(xid)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed xid`);
  if (!DOMAIN.test(rootDomain)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed root domain`);
  if (!TIME.test(deadline)) throw new BadRequestError(`${CONTEXT_HEADER}: malformed deadline`);
  if (signer !== undefined) {
    if (issuedAt === undefined || signature === undefined) {
      throw new UnauthorizedError(`${CONTEXT_HEADER}: not signed, and this service requires signatures`);
    }
    checkSignature(
      signer,
      HEADER_PURPOSE,
      `${VERSION};${globalId};${xid};${rootDomain};${deadline};${issuedAt}`,
      issuedAt,
      signature,
      now,
      maxSkewMs,
      CONTEXT_HEADER,
    );
  }
  return { globalId, xid, rootDomain, deadline: Number(deadline) };
}

/** `tcc-signature: <issuedAt>;<signature>` of a command's fields (not its bytes, so a framework's body parser does not matter). */
export function signCommand(command: BranchCommand, signer: Signer, now: number): string {
  return `${now};${signer.sign(COMMAND_PURPOSE, commandPayload(command, now))}`;
}

/**
 * Validates a command body (raw bytes, or an object a framework already parsed) and, with a
 * signer, its signature header. Throws `BadRequestError` or `UnauthorizedError`.
 */
export function readCommand(
  body: Buffer | object,
  signature: string | string[] | undefined,
  signer: Signer | undefined,
  now: number,
  maxSkewMs: number,
): BranchCommand {
  let parsed: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new BadRequestError(`malformed JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new BadRequestError('expected a JSON object { action, globalId, xid }');
  }
  const { action, globalId, xid } = parsed as Record<string, unknown>;
  for (const [name, value] of [
    ['action', action],
    ['globalId', globalId],
    ['xid', xid],
  ] as const) {
    if (typeof value !== 'string') throw new BadRequestError(`${name} must be a string`);
  }
  if (!ID.test(globalId as string)) throw new BadRequestError('malformed globalId');
  if (!ID.test(xid as string)) throw new BadRequestError('malformed xid');
  if (signer !== undefined) {
    if (typeof signature !== 'string') {
      throw new UnauthorizedError(`${SIGNATURE_HEADER}: missing, and this service requires signatures`);
    }
    const [issuedAt = '', sig = '', ...rest] = signature.split(';');
    if (rest.length > 0) throw new UnauthorizedError(`${SIGNATURE_HEADER}: malformed`);
    checkSignature(
      signer,
      COMMAND_PURPOSE,
      commandPayload({ action, globalId, xid } as BranchCommand, issuedAt),
      issuedAt,
      sig,
      now,
      maxSkewMs,
      SIGNATURE_HEADER,
    );
  }
  // Checked after the signature, so an unsigned caller learns nothing about the service.
  if (action !== 'confirm' && action !== 'cancel') {
    throw new BadRequestError(
      `unknown action ${JSON.stringify(String(action).slice(0, 32))} (confirm or cancel)`,
    );
  }
  return { action, globalId: globalId as string, xid: xid as string };
}

function commandPayload(command: BranchCommand, issuedAt: number | string): string {
  return `${issuedAt};${command.action};${command.globalId};${command.xid}`;
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
