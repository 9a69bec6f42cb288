import { STUCK_STATUSES, TERMINAL_STATUSES } from '../record.js';

const STATUSES: ReadonlySet<string> = new Set([...STUCK_STATUSES, ...TERMINAL_STATUSES]);
const PARTICIPANT_STATUSES: ReadonlySet<string> = new Set(['TRYING', 'TRIED', 'CONFIRMED', 'CANCELLED']);
const STRINGS = ['globalId', 'xid', 'domain', 'rootDomain'] as const;
const NUMBERS = ['retries', 'version', 'createdAt', 'updatedAt', 'deadline', 'dueAt'] as const;

/**
 * What is wrong with a value read back from a store as a transaction record (parsed JSON), or
 * `undefined` if it has the shape the runtime relies on. Stores turn the answer into a
 * `CorruptRecordError` naming their key, so a damaged or hand-written record is reported
 * instead of travelling on.
 */
export function recordShapeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object';
  for (const field of STRINGS) {
    if (typeof value[field] !== 'string')
      return `field ${field} is ${describe(value[field])}, expected a string`;
  }
  for (const field of NUMBERS) {
    if (typeof value[field] !== 'number')
      return `field ${field} is ${describe(value[field])}, expected a number`;
  }
  if (value.type !== 'ROOT' && value.type !== 'BRANCH') return `field type is ${describe(value.type)}`;
  if (typeof value.status !== 'string' || !STATUSES.has(value.status))
    return `field status is ${describe(value.status)}`;
  if (!Array.isArray(value.participants))
    return `field participants is ${describe(value.participants)}, expected an array`;
  for (const [i, p] of value.participants.entries()) {
    const problem = participantProblem(p);
    if (problem !== undefined) return `participants[${i}]: ${problem}`;
  }
  if (!isObject(value.attachments))
    return `field attachments is ${describe(value.attachments)}, expected an object`;
  for (const [name, v] of Object.entries(value.attachments)) {
    if (typeof v !== 'string') return `attachments.${name} is ${describe(v)}, expected a string`;
  }
  for (const field of ['parkedAt', 'expiresAt', 'keepFor'] as const) {
    if (field in value && typeof value[field] !== 'number')
      return `field ${field} is ${describe(value[field])}`;
  }
  if ('lastError' in value && typeof value.lastError !== 'string')
    return `field lastError is ${describe(value.lastError)}`;
  if ('claim' in value) {
    const claim = value.claim;
    if (!isObject(claim) || typeof claim.owner !== 'string' || typeof claim.until !== 'number')
      return `field claim is ${describe(claim)}, expected { owner: string, until: number }`;
  }
  if ('parent' in value) {
    const parent = value.parent;
    if (
      !isObject(parent) ||
      typeof parent.domain !== 'string' ||
      typeof parent.xid !== 'string' ||
      ('endpoint' in parent && typeof parent.endpoint !== 'string')
    )
      return `field parent is ${describe(parent)}, expected { domain, xid, endpoint? } of strings`;
  }
  return undefined;
}

function participantProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object';
  if (typeof value.id !== 'string') return `id is ${describe(value.id)}`;
  if (typeof value.status !== 'string' || !PARTICIPANT_STATUSES.has(value.status))
    return `status is ${describe(value.status)}`;
  const fields =
    value.kind === 'local'
      ? (['target', 'confirm', 'cancel', 'args'] as const)
      : value.kind === 'remote'
        ? (['endpoint', 'xid'] as const)
        : undefined;
  if (fields === undefined) return `kind is ${describe(value.kind)}`;
  for (const field of fields) {
    if (typeof value[field] !== 'string') return `${field} is ${describe(value[field])}`;
  }
  if (value.kind === 'remote' && 'domain' in value && typeof value.domain !== 'string')
    return `domain is ${describe(value.domain)}`;
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  return JSON.stringify(value) ?? String(value);
}
