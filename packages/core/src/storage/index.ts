/**
 * `@tcc/core/storage`: what a transaction log is made of, for the authors of stores. The
 * record model and the {@link TransactionStorage} contract, the kit every store enforces it
 * with (record checks, the version and terminal guards of the writes, query checks, keyset
 * paging, reading records back and reporting corrupt ones), the errors a store throws, and
 * {@link MemoryStorage}. It imports no runtime: a store package depends on this entry point alone.
 *
 * @packageDocumentation
 */
export {
  describeValue,
  requireNonNegativeInteger,
  requireObject,
  requirePositiveInteger,
} from '../base/checks.js';
export type { Clock } from '../base/clock.js';
export { systemClock } from '../base/clock.js';
export { hasCode, TCC_CODES, type TccCode } from '../base/codes.js';
export { InvalidOptionError, TccError } from '../base/errors.js';
export { type Batched, TurnBatcher, type TurnBatcherOptions } from '../base/turn-batcher.js';
export * from './errors.js';
export {
  type CorruptRecordHandler,
  corruptRecordHandler,
  decodeStoredRecord,
  type RecordCopies,
  skipCorrupt,
} from './kit/corrupt-records.js';
export { compareKey, cutPage, type PageCut, type PageKey, toPage } from './kit/keyset.js';
export { copyRecord, writeNextVersion } from './kit/next-version.js';
export { decodeCursor, encodeCursor } from './kit/page-cursor.js';
export {
  type CheckedFindStuck,
  type CheckedList,
  checkFindStuck,
  checkList,
  DEFAULT_LIST_LIMIT,
  requireLimit,
} from './kit/query-checks.js';
export { checkRecord, requireXid } from './kit/record-checks.js';
export { recordShapeProblem } from './kit/record-shape.js';
export { isExpired, isStuck } from './kit/record-state.js';
export {
  checkComplete,
  checkCreate,
  checkUpdate,
  requireExpiresAt,
  requireNextVersion,
} from './kit/write-guards.js';
export { MemoryStorage, type MemoryStorageOptions, type MemoryStorageStats } from './memory-storage.js';
export * from './record.js';
export type { FindStuckQuery, ListQuery, Page, TransactionStorage } from './transaction-storage.js';
