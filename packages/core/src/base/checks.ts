import { InvalidOptionError } from './errors.js';

/** Describes a value for an error message without dumping large objects. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : `an object (${value.constructor?.name ?? 'null prototype'})`;
}

/**
 * Checks an option that must be a whole number above 0 and returns it.
 * @throws {InvalidOptionError} naming `name` (e.g. `new RecoveryWorker: concurrency`) and the value.
 */
export function requirePositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${name} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Checks an option that must be a whole number, 0 or above, and returns it.
 * @throws {InvalidOptionError} naming `name` and the value.
 */
export function requireNonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidOptionError(`${name} must be a non-negative integer, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Checks that options given as an object are one (arrays pass: callers that refuse them say so).
 * @throws {InvalidOptionError} naming `where` and the value.
 */
export function requireObject(value: unknown, where: string): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionError(`${where} must be an object, got ${describeValue(value)}`);
  }
}

/** An error as one line for a message: its class name and message, or the thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
