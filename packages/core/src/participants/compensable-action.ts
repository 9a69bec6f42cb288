import type { ResolvedTransactionOptions } from './transaction-options.js';

/** Any function a participant exposes; arguments are whatever the try was called with. */
// biome-ignore lint/suspicious/noExplicitAny: the three methods of an action share arbitrary parameters
export type AnyFunction = (...args: any[]) => unknown;

/**
 * One registered try/confirm/cancel triple, bound to its instance. Records refer to it by
 * `name` (`participant.method`), which is how a recovering process finds it again.
 */
export interface CompensableAction {
  readonly name: string;
  readonly try: AnyFunction;
  readonly confirm: AnyFunction;
  readonly cancel: AnyFunction;
  /** Method names as the user wrote them, kept in records for operators. */
  readonly confirmName: string;
  readonly cancelName: string;
  readonly options: ResolvedTransactionOptions;
}
