import type { Page } from '../transaction-storage.js';
import { encodeCursor } from './page-cursor.js';

/** A position in a keyset order: `(time, xid)`. */
export type PageKey = readonly [time: number, xid: string];

/**
 * Orders `(time, xid)` positions; xids compare by UTF-16 code units, which is what
 * PostgreSQL's `COLLATE "C"` does on ASCII, so every store pages in the same order.
 */
export function compareKey(time: number, xid: string, otherTime: number, otherXid: string): number {
  if (time !== otherTime) return time < otherTime ? -1 : 1;
  return xid < otherXid ? -1 : xid > otherXid ? 1 : 0;
}

/** The rows that make one page, and the cursor of the next page if there is one. */
export interface PageCut<T> {
  readonly rows: T[];
  readonly cursor: string | undefined;
}

/**
 * Cuts one page out of `rows`, sorted and fetched `limit + 1` at a time: the extra row only
 * says that another page follows. The cursor is the key of the page's last row, taken from
 * the row rather than from a decoded record, so a page that ends on a corrupt record still
 * moves on.
 */
export function cutPage<T>(
  operation: string,
  rows: readonly T[],
  limit: number,
  keyOf: (row: T) => PageKey,
): PageCut<T> {
  const taken = rows.length > limit ? rows.slice(0, limit) : rows.slice();
  const last = taken[taken.length - 1];
  const cursor = rows.length > limit && last !== undefined ? encodeCursor(operation, keyOf(last)) : undefined;
  return { rows: taken, cursor };
}

/** A {@link Page}; the last page has no `cursor` property at all, not an undefined one. */
export function toPage(records: Page['records'], cursor: string | undefined): Page {
  return cursor === undefined ? { records } : { records, cursor };
}
