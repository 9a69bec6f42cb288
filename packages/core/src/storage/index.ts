/**
 * `@tcc/core/storage`: what a transaction log is made of, for the authors of stores. The
 * record model and the {@link TransactionStorage} contract, the checks every store makes
 * alike, the errors a store throws, and {@link MemoryStorage}. It imports no runtime: a store
 * package depends on this entry point alone.
 *
 * @packageDocumentation
 */
export { describeValue } from '../base/checks.js';
export type { Clock } from '../base/clock.js';
export { systemClock } from '../base/clock.js';
export { hasCode, TCC_CODES, type TccCode } from '../base/codes.js';
export { InvalidOptionError, TccError } from '../base/errors.js';
export { type Batched, TurnBatcher, type TurnBatcherOptions } from '../base/turn-batcher.js';
export {
  CorruptRecordError,
  DuplicateTransactionError,
  OptimisticLockError,
  ReplicationTimeoutError,
  StorageError,
  TransactionHangingError,
} from './errors.js';
export { MemoryStorage, type MemoryStorageOptions, type MemoryStorageStats } from './memory-storage.js';
export { decodeCursor, encodeCursor, type PageKey } from './page-cursor.js';
export type {
  LocalParticipant,
  Participant as ParticipantRecord,
  ParticipantStatus,
  RemoteParticipant,
  TransactionRecord,
  TransactionStatus,
  TransactionType,
} from './record.js';
export { STUCK_STATUSES, TERMINAL_STATUSES } from './record.js';
export { recordShapeProblem } from './record-shape.js';
export type { FindStuckQuery, ListQuery, Page, TransactionStorage } from './transaction-storage.js';
export { requireExpiresAt, requireLimit, requireNextVersion } from './write-checks.js';
