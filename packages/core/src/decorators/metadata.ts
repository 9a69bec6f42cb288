import 'reflect-metadata';
import type { TransactionOptions } from '../participants/transaction-options.js';

/**
 * Metadata lives on the decorated method function itself (and the participant name on the
 * class), which is reachable the same way under legacy and standard decorators.
 */
const COMPENSABLE = Symbol.for('tcc:compensable');
const PARTICIPANT = Symbol.for('tcc:participant');

export interface CompensableOptions extends TransactionOptions {
  /** Name of the method that confirms this try; it receives the try's arguments. */
  confirmMethod: string;
  /** Name of the method that cancels this try; it receives the try's arguments. */
  cancelMethod: string;
}

export interface CompensableMetadata {
  readonly options: CompensableOptions;
  readonly methodName: string;
  /** The undecorated try, called with the instance as `this`. */
  readonly original: (...args: unknown[]) => unknown;
}

export function defineCompensable(wrapper: object, metadata: CompensableMetadata): void {
  Reflect.defineMetadata(COMPENSABLE, metadata, wrapper);
}

export function compensableOf(method: unknown): CompensableMetadata | undefined {
  if (typeof method !== 'function') return undefined;
  return Reflect.getOwnMetadata(COMPENSABLE, method) as CompensableMetadata | undefined;
}

export function defineParticipantName(ctor: object, name: string): void {
  Reflect.defineMetadata(PARTICIPANT, name, ctor);
}

export function participantNameOf(ctor: object): string | undefined {
  return Reflect.getOwnMetadata(PARTICIPANT, ctor) as string | undefined;
}
