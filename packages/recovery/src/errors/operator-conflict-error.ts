import { TccError } from '@tcc/core';

/**
 * Another process changed the record while an operator action was writing it, or is driving
 * it right now (its claim is live); nothing was written.
 */
export class OperatorConflictError extends TccError {
  readonly xid: string;

  constructor(xid: string, action: string, detail?: string) {
    super(
      'TCC_OPERATOR_CONFLICT',
      `${action} of ${xid}: ${detail ?? 'another process changed the record meanwhile'}; nothing was written, look again and retry`,
    );
    this.xid = xid;
  }
}
