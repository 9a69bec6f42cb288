/**
 * BullMQ recovery worker and the `tccctl` command line (DESIGN.md §7).
 */
export { ConfigError } from './errors/config-error.js';
export { type CorruptRecordReport, CorruptRecordsError } from './errors/corrupt-records-error.js';
export { OperatorConflictError } from './errors/operator-conflict-error.js';
export { OperatorRefusedError, type RefusalRule } from './errors/operator-refused-error.js';
export { RecordNotFoundError } from './errors/record-not-found-error.js';
export { RecoveryFailedError } from './errors/recovery-failed-error.js';
export { type DecisionResult, Operator, type PurgeResult } from './operator/operator.js';
export { recoveryJobId } from './worker/job-id.js';
export type { RecoveryBackoff, RecoveryConnection, RecoveryWorkerOptions } from './worker/options.js';
export {
  type FailedEvent,
  type ParkedEvent,
  type RecoveredInfo,
  RecoveryWorker,
  type RecoveryWorkerEvents,
} from './worker/recovery-worker.js';
export type { CloseOutcome, RecoveryCloseOptions } from './worker/shutdown.js';
