import { describeValue } from '../../base/checks.js';
import { StorageError } from '../errors.js';
import type { FindStuckQuery, ListQuery } from '../transaction-storage.js';
import type { PageKey } from './keyset.js';
import { decodeCursor } from './page-cursor.js';

/** Records on a `list` page when the query names no `limit` (see `TransactionStorage`). */
export const DEFAULT_LIST_LIMIT = 100;

/** A `findStuck` query checked: the page size, the bound, and where the page starts. */
export interface CheckedFindStuck {
  readonly limit: number;
  readonly dueBefore: number;
  /** The position the query's cursor stands for; `undefined` on the first page. */
  readonly after: PageKey | undefined;
}

/** A `list` query's paging checked: the page size (default 100) and where the page starts. */
export interface CheckedList {
  readonly limit: number;
  readonly after: PageKey | undefined;
}

/**
 * Checks the paging of a `findStuck` query: `limit` a positive integer, `dueBefore` a number
 * (±Infinity means no bound), `cursor` one that `findStuck` returned.
 *
 * @throws {StorageError} naming the bad value.
 */
export function checkFindStuck(query: FindStuckQuery): CheckedFindStuck {
  const limit = requireLimit('findStuck', query.limit);
  const { dueBefore } = query;
  if (typeof dueBefore !== 'number' || Number.isNaN(dueBefore)) {
    throw new StorageError(`findStuck: dueBefore must be a number, got ${describeValue(dueBefore)}`);
  }
  const after = query.cursor === undefined ? undefined : decodeCursor('findStuck', query.cursor);
  return { limit, dueBefore, after };
}

/**
 * Checks the paging of a `list` query: `limit` absent (100) or a positive integer, `cursor`
 * one that `list` returned.
 *
 * @throws {StorageError} naming the bad value.
 */
export function checkList(query: ListQuery): CheckedList {
  const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : requireLimit('list', query.limit);
  const after = query.cursor === undefined ? undefined : decodeCursor('list', query.cursor);
  return { limit, after };
}

/** A page size: a positive integer. */
export function requireLimit(operation: string, limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw new StorageError(`${operation}: limit must be a positive integer, got ${describeValue(limit)}`);
  }
  return limit;
}
