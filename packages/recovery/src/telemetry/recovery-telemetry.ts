import {
  type Attributes,
  context,
  type Link,
  metrics,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { parseTraceparent, TCC_TELEMETRY } from '@tcc/core';
import { VERSION } from './version.js';

const { scopes, spans, metrics: names, attributes: keys } = TCC_TELEMETRY;

/** What a recovery job's span records about the job. */
export interface JobInfo {
  readonly xid: string;
  readonly traceparent?: string | undefined;
  readonly jobId?: string | undefined;
  readonly attempt: number;
}

/**
 * The worker's spans and metrics, through `@opentelemetry/api` only (a no-op without an SDK).
 * Instruments are made when the worker is constructed: install the SDK before that. Names are
 * core's `TCC_TELEMETRY` catalog's.
 *
 * - span `tcc.recovery.job` per job: a new trace (the job is not part of the request that began
 *   the transaction) with a link to that request's span, from the record's `traceparent`. The
 *   job runs inside it, so core's `tcc.recover` span of the attempt is its child, and core's
 *   `tcc.recoveries` counter counts the attempt's outcome;
 * - gauge `tcc.recovery.stuck`: stuck records found by the last scan this process ran.
 */
export class RecoveryTelemetry {
  readonly #tracer = trace.getTracer(scopes.recovery, VERSION);
  readonly #attributes: Attributes;
  #stuck: number | undefined;

  constructor(readonly domain: string) {
    const meter = metrics.getMeter(scopes.recovery, VERSION);
    this.#attributes = Object.freeze({ [keys.domain]: domain });
    const { recoveryStuck: stuck } = names;
    meter
      .createObservableGauge(stuck.name, { description: stuck.description, unit: stuck.unit })
      .addCallback((result) => {
        if (this.#stuck !== undefined) result.observe(this.#stuck, this.#attributes);
      });
  }

  /** Runs one job inside its `tcc.recovery.job` span. */
  async job<T>(info: JobInfo, run: () => Promise<T>, outcomeOf: (value: T) => string): Promise<T> {
    const link = parseTraceparent(info.traceparent);
    const links: Link[] = link === undefined ? [] : [{ context: link }];
    const span = this.#tracer.startSpan(
      spans.recoveryJob,
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          [keys.xid]: info.xid,
          [keys.domain]: this.domain,
          [keys.recoveryAttempt]: info.attempt,
          ...(info.jobId === undefined ? {} : { [keys.messageId]: info.jobId }),
        },
      },
      ROOT_CONTEXT,
    );
    try {
      const value = await context.with(trace.setSpan(ROOT_CONTEXT, span), run);
      span.setAttribute(keys.outcome, outcomeOf(value));
      return value;
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
      throw error;
    } finally {
      span.end();
    }
  }

  stuck(count: number): void {
    this.#stuck = count;
  }
}
