import { TccError } from '@tcc/core';

/** An operator named an xid the store does not hold (finished and deleted, or mistyped). */
export class RecordNotFoundError extends TccError {
  readonly xid: string;

  constructor(xid: string) {
    super('TCC_NOT_FOUND', `no transaction record with xid ${JSON.stringify(xid)}`);
    this.xid = xid;
  }
}
