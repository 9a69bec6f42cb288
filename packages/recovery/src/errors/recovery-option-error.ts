import { TccError } from '@tcc/core';

/** An option of the recovery worker or the command line has a value it cannot work with. */
export class RecoveryOptionError extends TccError {
  constructor(message: string) {
    super('TCC_RECOVERY_OPTION', message);
  }
}
