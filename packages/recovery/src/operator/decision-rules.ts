import type { TransactionRecord } from '@tcc/core';
import { OperatorRefusedError } from '../errors/operator-refused-error.js';

export type OperatorDecision = 'confirm' | 'cancel';

/**
 * What an operator's confirm or cancel does to a record:
 * - `done`: it already ended that way;
 * - `drive`: the decision is already written (its commit point); drive it now;
 * - `decide`: write the commit point (CONFIRMING or CANCELLING), then drive it.
 *
 * @throws {OperatorRefusedError} naming the rule, where the decision would contradict the log.
 */
export function planDecision(
  record: TransactionRecord,
  decision: OperatorDecision,
  domain: string,
): 'done' | 'drive' | 'decide' {
  const { xid, status } = record;
  if (record.domain !== domain) {
    throw new OperatorRefusedError(
      xid,
      'foreign-domain',
      `${xid} belongs to domain ${record.domain}; run the command with that domain's config (its participants are registered there)`,
    );
  }
  const same = decision === 'confirm' ? 'CONFIRMING' : 'CANCELLING';
  const opposite = decision === 'confirm' ? 'CANCELLING' : 'CONFIRMING';
  const ended = decision === 'confirm' ? 'CONFIRMED' : 'CANCELLED';
  const endedOtherwise = decision === 'confirm' ? 'CANCELLED' : 'CONFIRMED';
  if (status === ended) return 'done';
  if (status === same) return 'drive';
  if (status === opposite || status === endedOtherwise) {
    throw new OperatorRefusedError(
      xid,
      'commit-point',
      `${xid} is ${status}: its commit point says ${decision === 'confirm' ? 'cancel' : 'confirm'}, which an operator cannot reverse`,
    );
  }
  if (decision === 'cancel') return 'decide';
  if (status === 'TRY_FAILED') {
    throw new OperatorRefusedError(
      xid,
      'try-failed',
      `${xid} is TRY_FAILED: its try failed, it can only be cancelled`,
    );
  }
  // TRYING: the log has no proof that every try succeeded (a try may still be running, or have
  // died half done); TRIED (a branch) is that proof for every participant.
  const unknown = record.participants.filter((p) => p.status === 'TRYING');
  if (status === 'TRYING' && (unknown.length > 0 || record.participants.length === 0)) {
    const names = unknown.map((p) => (p.kind === 'local' ? p.target : p.endpoint)).join(', ');
    throw new OperatorRefusedError(
      xid,
      'try-not-known',
      `${xid} is TRYING and the try of ${names || 'its participants'} is not known to have succeeded; only cancel is safe`,
    );
  }
  return 'decide';
}
