import {
  type Attributes,
  type Counter,
  context,
  type Histogram,
  metrics,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { TransactionRecord } from '../storage/record.js';
import { TCC_TELEMETRY } from './catalog.js';
import { VERSION } from './version.js';

const { scopes, spans, metrics: names, attributes: keys } = TCC_TELEMETRY;

/** Span names of core, one per phase (DESIGN.md §8). */
export type PhaseSpan = (typeof spans)['try' | 'confirm' | 'cancel' | 'recover'];

/** How a transaction or a recovery attempt ended, as counted by the metrics. */
export type Outcome = 'confirmed' | 'cancelled' | 'failed' | 'parked' | 'pending';

/**
 * Spans and metrics through `@opentelemetry/api` only: without an installed SDK every call is
 * a no-op. Instruments are made when the `Tcc` is constructed, so install the SDK before that.
 */
export class Telemetry {
  readonly #tracer = trace.getTracer(scopes.core, VERSION);
  readonly #transactions: Counter;
  readonly #duration: Histogram;
  readonly #recoveries: Counter;

  constructor(private readonly domain: string) {
    const meter = metrics.getMeter(scopes.core, VERSION);
    const { transactions, transactionDuration: duration, recoveries } = names;
    this.#transactions = meter.createCounter(transactions.name, {
      description: transactions.description,
      unit: transactions.unit,
    });
    this.#duration = meter.createHistogram(duration.name, {
      description: duration.description,
      unit: duration.unit,
      advice: { explicitBucketBoundaries: [...duration.buckets] },
    });
    this.#recoveries = meter.createCounter(recoveries.name, {
      description: recoveries.description,
      unit: recoveries.unit,
    });
  }

  start(
    name: PhaseSpan,
    of: { readonly globalId: string; readonly xid: string; readonly status?: string },
  ): Span {
    const span = this.#tracer.startSpan(name);
    // Attributes are built only for a span that records: the no-op path allocates nothing.
    if (span.isRecording()) {
      span.setAttributes({
        [keys.globalId]: of.globalId,
        [keys.xid]: of.xid,
        [keys.domain]: this.domain,
        [keys.status]: of.status ?? 'TRYING',
      });
    }
    return span;
  }

  /** Runs `fn` with `span` active, so spans the user's code starts become its children. */
  within<T>(span: Span, fn: () => Promise<T>): Promise<T> {
    if (!span.isRecording()) return fn();
    return context.with(trace.setSpan(context.active(), span), fn);
  }

  end(span: Span, record: Pick<TransactionRecord, 'status'> | undefined, error?: unknown): void {
    if (!span.isRecording()) return;
    if (record !== undefined) span.setAttribute(keys.status, record.status);
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    span.end();
  }

  /** `startedAt` and `now` in milliseconds (the clock's); the duration is recorded in seconds. */
  transactionEnded(outcome: Outcome, startedAt: number, now: number): void {
    const attributes = this.#attributes(outcome);
    this.#transactions.add(1, attributes);
    this.#duration.record((now - startedAt) / 1_000, attributes);
  }

  recovered(outcome: string): void {
    this.#recoveries.add(1, this.#attributes(outcome));
  }

  readonly #byOutcome = new Map<string, Attributes>();

  /** One frozen attribute set per outcome, so counting allocates nothing. */
  #attributes(outcome: string): Attributes {
    let attributes = this.#byOutcome.get(outcome);
    if (attributes === undefined) {
      attributes = Object.freeze({ [keys.domain]: this.domain, [keys.outcome]: outcome });
      this.#byOutcome.set(outcome, attributes);
    }
    return attributes;
  }
}
