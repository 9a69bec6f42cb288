import { describeValue, requirePositiveInteger } from '../base/checks.js';
import { InvalidOptionError } from '../base/errors.js';
import { ID_PATTERN } from '../base/ids.js';

/**
 * How a compensable call relates to the transaction in scope:
 * - `REQUIRED` (default): join it, or begin a new root if there is none;
 * - `REQUIRES_NEW`: always begin a new root, independent of the one in scope;
 * - `MANDATORY`: join it; without one, refuse with `TransactionRequiredError`;
 * - `SUPPORTS`: join it; without one, run as a plain call.
 */
export const Propagation = {
  REQUIRED: 'REQUIRED',
  REQUIRES_NEW: 'REQUIRES_NEW',
  MANDATORY: 'MANDATORY',
  SUPPORTS: 'SUPPORTS',
} as const;
export type Propagation = (typeof Propagation)[keyof typeof Propagation];

/** An error class, as used by {@link TransactionOptions.delayCancelOn}. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/** Options of a transaction, whether begun by `tcc.transaction` or by a compensable method. */
export interface TransactionOptions {
  propagation?: Propagation;
  /** Try deadline of a root this call begins, in ms. Default: the `Tcc`'s `timeoutMs`. */
  timeoutMs?: number;
  /** Return once CONFIRMING is written; confirm in the background (recovery finishes failures). */
  asyncConfirm?: boolean;
  /** Rethrow the try's error at once; cancel in the background. */
  asyncCancel?: boolean;
  /**
   * Try errors after which the root does not cancel at once but leaves the record TRYING for
   * recovery to cancel after the deadline: for failures such as a timeout, where a remote try
   * may still be running and an early cancel could arrive before it.
   */
  delayCancelOn?: readonly ErrorClass[];
}

/** Options of `tcc.transaction(body, options)`. */
export interface TccTransactionOptions extends TransactionOptions {
  /**
   * The root's id (its globalId and xid) instead of a random one: a business key such as
   * `order-1042`, so that a retried request cannot begin the same transaction twice. A call with
   * an id that is running or has run does not run its body: it throws
   * `DuplicateTransactionError` carrying that transaction's outcome. A root begun with an id is
   * kept max(`retainMs`, 24 h) once finished to answer such retries, and its record is written
   * before the body runs (one write more). 1-128 letters, digits and `_ . : -`. Only for a call
   * that begins a root (not one that joins the transaction in scope).
   */
  id?: string;
}

/** Options after validation, with defaults filled in where they do not depend on the `Tcc`. */
export interface ResolvedTransactionOptions {
  /** `tcc.transaction(fn, { id })`: the root's id; `undefined` for a random one. */
  readonly id: string | undefined;
  readonly propagation: Propagation;
  readonly timeoutMs: number | undefined;
  readonly asyncConfirm: boolean;
  readonly asyncCancel: boolean;
  readonly delayCancelOn: readonly ErrorClass[];
}

const PROPAGATIONS: ReadonlySet<unknown> = new Set(Object.values(Propagation));

export const DEFAULT_TRANSACTION_OPTIONS: ResolvedTransactionOptions = Object.freeze({
  id: undefined,
  propagation: 'REQUIRED',
  timeoutMs: undefined,
  asyncConfirm: false,
  asyncCancel: false,
  delayCancelOn: Object.freeze([]),
});

/** Validates user-given options; `where` names their owner in error messages. */
export function resolveTransactionOptions(
  options: TransactionOptions | undefined,
  where: string,
): ResolvedTransactionOptions {
  if (options === undefined) return DEFAULT_TRANSACTION_OPTIONS;
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError(`${where}: options must be an object, got ${describeValue(options)}`);
  }
  const { propagation = 'REQUIRED', timeoutMs, asyncConfirm = false, asyncCancel = false } = options;
  if (!PROPAGATIONS.has(propagation)) {
    throw new InvalidOptionError(
      `${where}: propagation must be one of ${[...PROPAGATIONS].join(', ')}, got ${describeValue(propagation)}`,
    );
  }
  if (timeoutMs !== undefined) requirePositiveInteger(timeoutMs, `${where}: timeoutMs`);
  for (const [name, flag] of [
    ['asyncConfirm', asyncConfirm],
    ['asyncCancel', asyncCancel],
  ] as const) {
    if (typeof flag !== 'boolean') {
      throw new InvalidOptionError(`${where}: ${name} must be a boolean, got ${describeValue(flag)}`);
    }
  }
  const delayCancelOn = options.delayCancelOn ?? [];
  if (!Array.isArray(delayCancelOn) || delayCancelOn.some((c) => typeof c !== 'function')) {
    throw new InvalidOptionError(
      `${where}: delayCancelOn must be an array of error classes, got ${describeValue(delayCancelOn)}`,
    );
  }
  return { id: undefined, propagation, timeoutMs, asyncConfirm, asyncCancel, delayCancelOn };
}

/** Validates the options of `tcc.transaction`, `id` included. */
export function resolveRootOptions(
  options: TccTransactionOptions | undefined,
  where: string,
): ResolvedTransactionOptions {
  const resolved = resolveTransactionOptions(options, where);
  const id = options?.id;
  if (id === undefined) return resolved;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new InvalidOptionError(
      `${where}: id must be 1-128 letters, digits or _ . : - (it becomes the transaction's globalId), got ${describeValue(id)}`,
    );
  }
  if (resolved.propagation === 'MANDATORY' || resolved.propagation === 'SUPPORTS') {
    throw new InvalidOptionError(
      `${where}: id ${JSON.stringify(id)} names a new root, but propagation ${resolved.propagation} never begins one`,
    );
  }
  return { ...resolved, id };
}
