import { TccError } from '@tcc/core';

/** The command line was wrong: unknown command or flag, a missing argument, a bad value. */
export class UsageError extends TccError {
  constructor(message: string) {
    super('TCC_USAGE', message);
  }
}
