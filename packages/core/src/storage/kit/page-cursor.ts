import { describeValue } from '../../base/checks.js';
import { StorageError } from '../errors.js';
import type { PageKey } from './keyset.js';

// Cursors name the operation that made them, so one passed to the other is refused, not misread.

/** The opaque cursor of `findStuck`/`list` pages, for the position after `key`. */
export function encodeCursor(operation: string, [time, xid]: PageKey): string {
  return Buffer.from(JSON.stringify([operation, time, xid])).toString('base64url');
}

/** The position a cursor of `operation` stands for; anything else is a `StorageError`. */
export function decodeCursor(operation: string, cursor: unknown): PageKey {
  if (typeof cursor === 'string') {
    try {
      const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      if (
        Array.isArray(decoded) &&
        decoded.length === 3 &&
        decoded[0] === operation &&
        typeof decoded[1] === 'number' &&
        Number.isFinite(decoded[1]) &&
        typeof decoded[2] === 'string'
      ) {
        return [decoded[1], decoded[2]];
      }
    } catch {
      // not JSON: reported below like any other foreign cursor
    }
  }
  throw new StorageError(`${operation}: cursor ${describeValue(cursor)} was not returned by ${operation}`);
}
