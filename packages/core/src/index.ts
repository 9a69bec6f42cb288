export type { Clock } from './clock.js';
export { systemClock } from './clock.js';
export type { Codec, JsonCodecOptions } from './codec/codec.js';
export { JsonCodec } from './codec/codec.js';
export { UndecodableArgumentError, UnserializableArgumentError } from './codec/errors.js';
export type { TransactionContext, TransactionPhase } from './context/transaction-context.js';
export { Compensable, type CompensableDecorator } from './decorators/compensable.js';
export type { CompensableOptions } from './decorators/metadata.js';
export { Participant, type ParticipantDecorator } from './decorators/participant.js';
export {
  DuplicateParticipantError,
  InvalidParticipantError,
  NotRegisteredError,
} from './participants/errors.js';
export { decide, type RecoveryStep } from './recovery/decision.js';
export type { RecoverOptions, RecoveryOutcome, RecoveryResult } from './recovery/recoverer.js';
export {
  CorruptRecordError,
  DuplicateTransactionError,
  OptimisticLockError,
  ReplicationTimeoutError,
  StorageError,
} from './storage/errors.js';
export {
  MemoryStorage,
  type MemoryStorageOptions,
  type MemoryStorageStats,
} from './storage/memory-storage.js';
// For TransactionStorage implementations: the checks and cursors every store shares.
export { decodeCursor, encodeCursor, type PageKey } from './storage/page-cursor.js';
export { recordShapeProblem } from './storage/record-shape.js';
export type { FindStuckQuery, ListQuery, Page, TransactionStorage } from './storage/transaction-storage.js';
export { requireExpiresAt, requireLimit, requireNextVersion } from './storage/write-checks.js';
export type {
  CompensableSpec,
  RecoveryOptions,
  RegisterOptions,
  StartRecoveryOptions,
  TccOptions,
} from './tcc.js';
export { Tcc } from './tcc.js';
export { TccError } from './tcc-error.js';
export { describeValue, InvalidOptionError } from './tcc-options-error.js';
export type { BranchOrigin } from './transaction/active-transaction.js';
export {
  CommitFailedError,
  ConfirmFailedError,
  DeadlineExceededError,
  LeaseLostError,
  OutcomeUnknownError,
  TransactionHangingError,
  TransactionRequiredError,
  TransactionStateError,
} from './transaction/errors.js';
export { type ErrorClass, Propagation, type TransactionOptions } from './transaction/options.js';
export type { RemoteInvoker, SettlePhase } from './transaction/phase-driver.js';
export type {
  LocalParticipant,
  Participant as ParticipantRecord,
  ParticipantStatus,
  RemoteParticipant,
  TransactionRecord,
  TransactionStatus,
  TransactionType,
} from './transaction/record.js';
export { STUCK_STATUSES, TERMINAL_STATUSES } from './transaction/record.js';
export {
  type ExpressMiddleware,
  type FastifyPlugin,
  type HasHttpHandler,
  tccExpress,
  tccFastify,
} from './transport/adapters.js';
export {
  BadRequestError,
  RemoteCallError,
  RemoteCommandError,
  RemoteTimeoutError,
  UnauthorizedError,
} from './transport/errors.js';
export {
  type HttpClientOptions,
  type TccFetchOptions,
  TccHttpClient,
  tccFetch,
} from './transport/http-client.js';
export type { HttpHandlerOptions, NextFunction, TccHttpHandler } from './transport/http-handler.js';
export type { HttpTransportOptions } from './transport/options.js';
export { Signer } from './transport/signing.js';
export {
  type BranchCommand,
  bodyDigest,
  COMMAND_PATH,
  CONTEXT_HEADER,
  DIGEST_HEADER,
  decodeContextHeader,
  encodeContextHeader,
  MAX_BATCH_COMMANDS,
  type RequestBinding,
  SIGNATURE_HEADER,
  signCommand,
  signCommands,
} from './transport/wire.js';
