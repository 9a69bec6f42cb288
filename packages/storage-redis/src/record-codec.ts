import { CorruptRecordError, STUCK_STATUSES, TERMINAL_STATUSES, type TransactionRecord } from '@tcc/core';

const STATUSES: ReadonlySet<string> = new Set([
  ...STUCK_STATUSES,
  ...TERMINAL_STATUSES,
  'TRIED',
  'TRY_FAILED',
]);
const PARTICIPANT_STATUSES: ReadonlySet<string> = new Set(['TRYING', 'TRIED', 'CONFIRMED', 'CANCELLED']);
const STRINGS = ['globalId', 'xid', 'domain', 'rootDomain'] as const;
const NUMBERS = ['retries', 'version', 'createdAt', 'updatedAt', 'deadline'] as const;

/**
 * Reads a stored record back: the JSON of the `r` field, checked field by field so a damaged
 * or hand-written value is reported with its key instead of travelling on as a bad record.
 *
 * @throws {CorruptRecordError} naming `key` and what is wrong.
 */
export function decodeRecord(
  key: string,
  xid: string,
  version: string | null,
  json: string | null,
): TransactionRecord {
  if (json === null) throw new CorruptRecordError(key, 'the record field "r" is missing');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new CorruptRecordError(key, `not JSON (${(error as Error).message})`, { cause: error });
  }
  const problem = checkShape(value);
  if (problem !== undefined) throw new CorruptRecordError(key, problem);
  const record = value as TransactionRecord;
  if (record.xid !== xid) throw new CorruptRecordError(key, `holds xid ${JSON.stringify(record.xid)}`);
  if (version !== null && String(record.version) !== version) {
    throw new CorruptRecordError(key, `version field ${version} differs from the record's ${record.version}`);
  }
  return record;
}

function checkShape(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  for (const field of STRINGS) {
    if (typeof r[field] !== 'string') return `field ${field} is ${describe(r[field])}, expected a string`;
  }
  for (const field of NUMBERS) {
    if (typeof r[field] !== 'number') return `field ${field} is ${describe(r[field])}, expected a number`;
  }
  if (r.type !== 'ROOT' && r.type !== 'BRANCH') return `field type is ${describe(r.type)}`;
  if (typeof r.status !== 'string' || !STATUSES.has(r.status)) return `field status is ${describe(r.status)}`;
  if (!Array.isArray(r.participants))
    return `field participants is ${describe(r.participants)}, expected an array`;
  for (const [i, p] of r.participants.entries()) {
    const problem = checkParticipant(p);
    if (problem !== undefined) return `participants[${i}]: ${problem}`;
  }
  const attachments = r.attachments;
  if (attachments === null || typeof attachments !== 'object' || Array.isArray(attachments)) {
    return `field attachments is ${describe(attachments)}, expected an object`;
  }
  for (const field of ['parkedAt', 'expiresAt'] as const) {
    if (field in r && typeof r[field] !== 'number') return `field ${field} is ${describe(r[field])}`;
  }
  if ('lastError' in r && typeof r.lastError !== 'string')
    return `field lastError is ${describe(r.lastError)}`;
  return undefined;
}

function checkParticipant(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return 'not an object';
  const p = value as Record<string, unknown>;
  if (typeof p.id !== 'string') return `id is ${describe(p.id)}`;
  if (typeof p.status !== 'string' || !PARTICIPANT_STATUSES.has(p.status))
    return `status is ${describe(p.status)}`;
  const fields =
    p.kind === 'local'
      ? (['target', 'confirm', 'cancel', 'args'] as const)
      : p.kind === 'remote'
        ? (['endpoint', 'xid'] as const)
        : undefined;
  if (fields === undefined) return `kind is ${describe(p.kind)}`;
  for (const field of fields) {
    if (typeof p[field] !== 'string') return `${field} is ${describe(p[field])}`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  return JSON.stringify(value) ?? String(value);
}
