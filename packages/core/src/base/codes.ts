/**
 * Every `code` a {@link TccError} of any tcc package can carry, with the HTTP status a `.tcc`
 * endpoint or a branch answers it with (`TCC_BAD_REQUEST` alone varies: 400, 405 or 413, on the
 * error). Codes are stable across versions: callers, the command line's JSON output and peers
 * on the wire match on them, so a code is never renamed or reused. One table, so that a new
 * error cannot be added without deciding how it travels.
 *
 * A status is part of the wire: most errors a branch's try can meet (a store's, a nested call's)
 * are answered 500, and changing one changes what callers see.
 */
export const TCC_CODES = {
  // Bad input from the application or an operator.
  TCC_INVALID_OPTION: 500,
  TCC_INVALID_PARTICIPANT: 500,
  TCC_DUPLICATE_PARTICIPANT: 500,
  TCC_NOT_REGISTERED: 500,
  TCC_UNSERIALIZABLE_ARGUMENT: 500,
  TCC_UNDECODABLE_ARGUMENT: 500,
  TCC_CONFIG: 500,
  // Transactions.
  TCC_TRANSACTION_REQUIRED: 500,
  TCC_INVALID_STATE: 409,
  TCC_DEADLINE_EXCEEDED: 409,
  TCC_TRANSACTION_HANGING: 409,
  TCC_DUPLICATE_TRANSACTION: 500,
  TCC_COMMIT_FAILED: 500,
  TCC_CONFIRM_FAILED: 500,
  TCC_OUTCOME_UNKNOWN: 500,
  TCC_BUSY: 409,
  TCC_LEASE_LOST: 500,
  // Branches answering a root.
  TCC_DUPLICATE_TRY: 500,
  TCC_TRY_IN_PROGRESS: 409,
  TCC_BRANCH_NOT_FOUND: 404,
  TCC_BRANCH_FAILED: 500,
  TCC_WRONG_DOMAIN: 421,
  // The HTTP transport.
  TCC_BAD_REQUEST: 400,
  TCC_UNAUTHORIZED: 401,
  TCC_UNKNOWN_PEER: 500,
  TCC_REMOTE_CALL_FAILED: 500,
  TCC_REMOTE_COMMAND_FAILED: 500,
  TCC_REMOTE_TIMEOUT: 500,
  // The transaction log.
  TCC_STORAGE: 503,
  TCC_OPTIMISTIC_LOCK: 503,
  TCC_CORRUPT_RECORD: 500,
  TCC_REPLICATION_TIMEOUT: 500,
  TCC_SCHEMA_VERSION: 500,
  TCC_STORE_LOCKED: 500,
  TCC_STORE_LOCK_LOST: 500,
  TCC_CONNECTION_LOST: 500,
  TCC_ROLLED_BACK: 500,
  // Recovery and operators (`@tcc/recovery`; no branch's answer carries them).
  TCC_NOT_FOUND: 404,
  TCC_RECOVERY_FAILED: 500,
  TCC_OPERATOR_REFUSED: 409,
  TCC_OPERATOR_CONFLICT: 409,
  TCC_CORRUPT_RECORDS: 500,
  /** Anything that is not a TccError, as answered on the wire. */
  TCC_INTERNAL: 500,
} as const satisfies Record<`TCC_${string}`, number>;

/** A code from {@link TCC_CODES}. */
export type TccCode = keyof typeof TCC_CODES;

/** The HTTP status an error with this code is answered with; 500 for a code not in the table. */
export function httpStatusOf(code: string): number {
  return (TCC_CODES as Record<string, number>)[code] ?? 500;
}

/**
 * The catalog code `value` carries, whichever copy of a tcc package threw it; `undefined` for
 * anything else (an error of another library may have a `code` of its own: `ECONNRESET`).
 */
export function tccCodeOf(value: unknown): TccCode | undefined {
  if (!(value instanceof Error)) return undefined;
  const code = (value as { code?: unknown }).code;
  return typeof code === 'string' && Object.hasOwn(TCC_CODES, code) ? (code as TccCode) : undefined;
}

/** Whether `value` is an error carrying this code, whichever copy of a tcc package threw it. */
export function hasCode(value: unknown, code: TccCode): value is Error & { readonly code: TccCode } {
  return value instanceof Error && (value as { code?: unknown }).code === code;
}
