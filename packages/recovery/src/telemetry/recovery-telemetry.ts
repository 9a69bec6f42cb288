import {
  type Attributes,
  type Counter,
  context,
  type Link,
  metrics,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { parseTraceparent } from './traceparent.js';

const SCOPE = '@tcc/recovery';

/** What a recovery job's span records about the job. */
export interface JobInfo {
  readonly xid: string;
  readonly traceparent?: string | undefined;
  readonly jobId?: string | undefined;
  readonly attempt: number;
}

/**
 * The worker's spans and metrics, through `@opentelemetry/api` only (a no-op without an SDK).
 * Instruments are made when the worker is constructed: install the SDK before that.
 *
 * - span `tcc.recover` per job: a new trace (the job is not part of the request that began the
 *   transaction) with a link to that request's span, from the record's `traceparent`;
 * - counters `tcc.recovery.recovered`, `tcc.recovery.failed`, `tcc.recovery.parked`;
 * - gauge `tcc.recovery.stuck`: stuck records found by the last scan this process ran.
 */
export class RecoveryTelemetry {
  readonly #tracer = trace.getTracer(SCOPE);
  readonly #recovered: Counter;
  readonly #failed: Counter;
  readonly #parked: Counter;
  readonly #attributes: Attributes;
  #stuck: number | undefined;

  constructor(readonly domain: string) {
    const meter = metrics.getMeter(SCOPE);
    this.#attributes = Object.freeze({ 'tcc.domain': domain });
    this.#recovered = meter.createCounter('tcc.recovery.recovered', {
      description: 'Records the recovery worker finished (confirmed, cancelled or marked TRY_FAILED)',
    });
    this.#failed = meter.createCounter('tcc.recovery.failed', {
      description: 'Recovery attempts that failed and will be retried',
    });
    this.#parked = meter.createCounter('tcc.recovery.parked', {
      description: 'Records parked for an operator after maxRetries failed attempts',
    });
    meter
      .createObservableGauge('tcc.recovery.stuck', {
        description: 'Stuck records found by the last scan of this process',
      })
      .addCallback((result) => {
        if (this.#stuck !== undefined) result.observe(this.#stuck, this.#attributes);
      });
  }

  /** Runs one job inside its `tcc.recover` span. */
  async job<T>(info: JobInfo, run: () => Promise<T>, outcomeOf: (value: T) => string): Promise<T> {
    const link = parseTraceparent(info.traceparent);
    const links: Link[] = link === undefined ? [] : [{ context: link }];
    const span = this.#tracer.startSpan(
      'tcc.recover',
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          'tcc.xid': info.xid,
          'tcc.domain': this.domain,
          'tcc.recovery.attempt': info.attempt,
          ...(info.jobId === undefined ? {} : { 'messaging.message.id': info.jobId }),
        },
      },
      ROOT_CONTEXT,
    );
    try {
      const value = await context.with(trace.setSpan(ROOT_CONTEXT, span), run);
      span.setAttribute('tcc.outcome', outcomeOf(value));
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

  recovered(): void {
    this.#recovered.add(1, this.#attributes);
  }

  failed(): void {
    this.#failed.add(1, this.#attributes);
  }

  parked(): void {
    this.#parked.add(1, this.#attributes);
  }

  stuck(count: number): void {
    this.#stuck = count;
  }
}
