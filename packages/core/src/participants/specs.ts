import type { TransactionOptions } from './transaction-options.js';

/** The three functions of a participant written without classes. */
export interface CompensableSpec<A extends unknown[], R> extends TransactionOptions {
  try: (...args: A) => Promise<R> | R;
  confirm: (...args: A) => unknown;
  cancel: (...args: A) => unknown;
}

export interface RegisterOptions {
  /** Participant name; default: `@Participant(name)`, else the class name. */
  name?: string;
}
