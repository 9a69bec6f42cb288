/**
 * `@tcc/core`: the application API. The runtime (`Tcc`), decorators, options, the errors an
 * application catches and the record types it reads. Store authors use `@tcc/core/storage`;
 * HTTP adapters, the client and the wire format are `@tcc/core/http`.
 *
 * @packageDocumentation
 */
export type { Clock } from './base/clock.js';
export { systemClock } from './base/clock.js';
export { hasCode, httpStatusOf, TCC_CODES, type TccCode } from './base/codes.js';
export * from './base/errors.js';
export type { Codec, JsonCodecOptions } from './codec/codec.js';
export { JsonCodec } from './codec/codec.js';
export * from './codec/errors.js';
export type { TransactionContext, TransactionPhase } from './context/transaction-context.js';
export { Compensable, type CompensableDecorator } from './decorators/compensable.js';
export type { CompensableOptions } from './decorators/metadata.js';
export { Participant, type ParticipantDecorator } from './decorators/participant.js';
// Errors of remote branches, caught by applications; the rest of HTTP is `@tcc/core/http`.
export * from './http/errors.js';
export type { HttpHandlerOptions, TccHttpHandler } from './http/http-handler.js';
export type { HttpTransportOptions } from './http/options.js';
export * from './participants/errors.js';
export type { CompensableSpec, RegisterOptions } from './participants/specs.js';
export { type ErrorClass, Propagation, type TransactionOptions } from './participants/transaction-options.js';
export { decide, type RecoveryStep } from './recovery/decision.js';
export type { RecoveryOptions, StartRecoveryOptions } from './recovery/options.js';
export { parkIfExhausted } from './recovery/parking.js';
export type { RecoverOptions, RecoveryOutcome, RecoveryResult } from './recovery/recoverer.js';
export * from './storage/errors.js';
export {
  MemoryStorage,
  type MemoryStorageOptions,
  type MemoryStorageStats,
} from './storage/memory-storage.js';
export * from './storage/record.js';
export type { FindStuckQuery, ListQuery, Page, TransactionStorage } from './storage/transaction-storage.js';
export type { TccOptions } from './tcc.js';
export { Tcc } from './tcc.js';
/**
 * Telemetry: {@link TCC_TELEMETRY} names every span, metric (with unit and description) and
 * attribute key the tcc packages emit through `@opentelemetry/api`; `parseTraceparent` reads the
 * W3C `traceparent` a record keeps in `attachments.traceparent`, for a recovery span's link.
 */
export { TCC_TELEMETRY, type TccSpanName } from './telemetry/catalog.js';
export { parseTraceparent } from './telemetry/traceparent.js';
export * from './transaction/errors.js';
