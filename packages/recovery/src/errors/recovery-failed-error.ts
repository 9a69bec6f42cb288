import { TccError } from '@tcc/core';

/** A recovery attempt failed (a participant threw); the job is retried after its backoff. */
export class RecoveryFailedError extends TccError {
  readonly xid: string;

  constructor(xid: string, cause: unknown) {
    super(
      'TCC_RECOVERY_FAILED',
      `recovery of ${xid} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.xid = xid;
  }
}
