import { TccError } from '@tcc/core';

/**
 * Why an operator's decision was refused; each names a rule, so scripts can match on it:
 * - `commit-point`: the record already carries the opposite decision (CONFIRMING/CANCELLING) or
 *   ended the other way (CONFIRMED/CANCELLED);
 * - `try-not-known`: confirm needs every participant's try to be known to have succeeded;
 * - `try-failed`: a branch whose try failed cannot be confirmed;
 * - `foreign-domain`: the record belongs to another service, which has its participants;
 * - `not-parked`: unpark of a record that is not parked.
 */
export type RefusalRule = 'commit-point' | 'try-not-known' | 'try-failed' | 'foreign-domain' | 'not-parked';

/** An operator's action would contradict what the log already says; nothing was written. */
export class OperatorRefusedError extends TccError {
  readonly xid: string;
  readonly rule: RefusalRule;

  constructor(xid: string, rule: RefusalRule, message: string) {
    super('TCC_OPERATOR_REFUSED', `refused (${rule}): ${message}`);
    this.xid = xid;
    this.rule = rule;
  }
}
