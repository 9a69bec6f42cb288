import { CorruptRecordError, type TransactionRecord } from '@tcc/core';

const TYPES = new Set(['ROOT', 'BRANCH']);
const STATUSES = new Set([
  'TRYING',
  'TRIED',
  'TRY_FAILED',
  'CONFIRMING',
  'CANCELLING',
  'CONFIRMED',
  'CANCELLED',
]);
const PARTICIPANT_STATUSES = new Set(['TRYING', 'TRIED', 'CONFIRMED', 'CANCELLED']);

/**
 * Reads a stored record back, checking the shape the runtime relies on. Anything else —
 * not JSON, a missing or mistyped field, a record stored under another xid — is a
 * `CorruptRecordError` naming the row's xid.
 */
export function decodeRecord(key: string, text: unknown): TransactionRecord {
  if (typeof text !== 'string')
    throw new CorruptRecordError(key, `record column is ${typeof text}, not text`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CorruptRecordError(key, `not JSON (${(error as Error).message})`, { cause: error });
  }
  const problem = checkRecord(value);
  if (problem !== undefined) throw new CorruptRecordError(key, problem);
  const record = value as TransactionRecord;
  if (record.xid !== key) throw new CorruptRecordError(key, `it holds xid ${JSON.stringify(record.xid)}`);
  return record;
}

function checkRecord(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object';
  for (const field of ['globalId', 'xid', 'domain', 'rootDomain'] as const) {
    if (typeof value[field] !== 'string') return `${field} is ${describe(value[field])}, not a string`;
  }
  if (!TYPES.has(value.type as string)) return `type is ${describe(value.type)}`;
  if (!STATUSES.has(value.status as string)) return `status is ${describe(value.status)}`;
  for (const field of ['retries', 'version', 'createdAt', 'updatedAt', 'deadline'] as const) {
    if (typeof value[field] !== 'number') return `${field} is ${describe(value[field])}, not a number`;
  }
  for (const field of ['parkedAt', 'expiresAt'] as const) {
    if (field in value && typeof value[field] !== 'number') return `${field} is ${describe(value[field])}`;
  }
  if ('lastError' in value && typeof value.lastError !== 'string')
    return `lastError is ${describe(value.lastError)}`;
  if (!isObject(value.attachments)) return `attachments is ${describe(value.attachments)}, not an object`;
  for (const [name, v] of Object.entries(value.attachments)) {
    if (typeof v !== 'string') return `attachments.${name} is ${describe(v)}, not a string`;
  }
  if (!Array.isArray(value.participants))
    return `participants is ${describe(value.participants)}, not an array`;
  for (const [i, p] of value.participants.entries()) {
    if (!isObject(p)) return `participants[${i}] is not an object`;
    if (typeof p.id !== 'string') return `participants[${i}].id is ${describe(p.id)}`;
    if (!PARTICIPANT_STATUSES.has(p.status as string))
      return `participants[${i}].status is ${describe(p.status)}`;
    const fields =
      p.kind === 'local'
        ? (['target', 'confirm', 'cancel', 'args'] as const)
        : p.kind === 'remote'
          ? (['endpoint', 'xid'] as const)
          : undefined;
    if (fields === undefined) return `participants[${i}].kind is ${describe(p.kind)}`;
    for (const field of fields) {
      if (typeof p[field] !== 'string') return `participants[${i}].${field} is ${describe(p[field])}`;
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  return JSON.stringify(value) ?? String(value);
}
