/**
 * Every span name, metric (name, unit, description) and attribute key that `@tcc/core` and
 * `@tcc/recovery` emit through `@opentelemetry/api`: the one place they are spelled. Dashboards,
 * alerts and tests can refer to these instead of repeating the strings.
 *
 * Units follow the OpenTelemetry conventions: durations in seconds (`s`), counts as annotations
 * in braces (`{transaction}`).
 *
 * @example
 * ```ts
 * import { TCC_TELEMETRY } from '@tcc/core';
 * const failed = points.filter((p) => p.attributes[TCC_TELEMETRY.attributes.outcome] === 'failed');
 * ```
 */
export const TCC_TELEMETRY = {
  /** Instrumentation scope names; each package's tracer and meter also carry its version. */
  scopes: {
    core: '@tcc/core',
    recovery: '@tcc/recovery',
  },
  spans: {
    /** The try phase of a root, or of a branch a callee's HTTP handler opened. */
    try: 'tcc.try',
    /** The confirm phase, by whichever driver runs it. */
    confirm: 'tcc.confirm',
    /** The cancel phase, by whichever driver runs it. */
    cancel: 'tcc.cancel',
    /** One recovery attempt of one record (`tcc.recover(xid)`), whoever asked for it. */
    recover: 'tcc.recover',
    /**
     * One job of the BullMQ recovery worker (kind consumer): a new trace linked to the
     * transaction's original span; the attempt's {@link TCC_TELEMETRY.spans.recover} span is its child.
     */
    recoveryJob: 'tcc.recovery.job',
  },
  metrics: {
    /** Counter, attributes `tcc.domain` and `tcc.outcome` (`confirmed`, `cancelled`, `pending`). */
    transactions: {
      name: 'tcc.transactions',
      unit: '{transaction}',
      description: 'Transactions ended by the process that began them, by outcome',
    },
    /** Histogram, same attributes as {@link TCC_TELEMETRY.metrics.transactions}. */
    transactionDuration: {
      name: 'tcc.transaction.duration',
      unit: 's',
      description: 'Time from begin to the end of confirm or cancel',
      /** Advised bucket boundaries, in seconds (OpenTelemetry's request-duration ones, to 60 s). */
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60],
    },
    /**
     * Counter, attributes `tcc.domain` and `tcc.outcome` (the attempt's `RecoveryOutcome`:
     * `confirmed`, `cancelled`, `try-failed`, `failed`, `parked`, `busy`, …): one per recovery
     * attempt that took a step, whether run by `tcc.recover`, `tcc.startRecovery`'s poller or
     * the BullMQ worker.
     */
    recoveries: {
      name: 'tcc.recoveries',
      unit: '{recovery}',
      description: 'Recovery attempts, by outcome',
    },
    /** Gauge of the recovery worker, attribute `tcc.domain`. */
    recoveryStuck: {
      name: 'tcc.recovery.stuck',
      unit: '{record}',
      description: 'Stuck records found by the last scan of this process',
    },
  },
  attributes: {
    globalId: 'tcc.global_id',
    xid: 'tcc.xid',
    domain: 'tcc.domain',
    /** The record's status: at the start of a span, then at its end. */
    status: 'tcc.status',
    /** How a transaction, a recovery attempt or a recovery job ended. */
    outcome: 'tcc.outcome',
    /** The recovery job's attempt number, from 1. */
    recoveryAttempt: 'tcc.recovery.attempt',
    /** OpenTelemetry's messaging convention: the BullMQ job id. */
    messageId: 'messaging.message.id',
  },
} as const;

/** A span name from {@link TCC_TELEMETRY}. */
export type TccSpanName = (typeof TCC_TELEMETRY.spans)[keyof typeof TCC_TELEMETRY.spans];
