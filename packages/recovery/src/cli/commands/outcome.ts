import type { RecoveryResult } from '@tcc/core';
import { EXIT } from '../exit-codes.js';

/** Exit code of a command whose last step was a recovery attempt. */
export function exitOf(result: RecoveryResult): number {
  switch (result.outcome) {
    case 'failed':
    case 'parked':
      return EXIT.recoveryFailed;
    case 'busy':
      return EXIT.conflict;
    case 'not-found':
      return EXIT.notFound;
    case 'foreign':
      return EXIT.refused;
    default:
      return EXIT.ok;
  }
}

/** One line saying what an attempt did. */
export function describeResult(result: RecoveryResult): string {
  const status = result.status === undefined ? '' : ` (status ${result.status})`;
  const error =
    result.error === undefined
      ? ''
      : `: ${result.error instanceof Error ? result.error.message : String(result.error)}`;
  const note: Partial<Record<RecoveryResult['outcome'], string>> = {
    waiting: ' - nothing to do yet (try within its deadline, or a branch waiting for its root)',
    busy: ' - another process is driving it (or changed it first); run again later',
    foreign: ' - it belongs to another domain',
  };
  return `${result.xid}: ${result.outcome}${status}${note[result.outcome] ?? ''}${error}`;
}
