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

const SCOPE = '@tcc/core';

/** Span names, one per phase (DESIGN.md §8). */
export type PhaseSpan = 'tcc.try' | 'tcc.confirm' | 'tcc.cancel' | 'tcc.recover';

/** How a transaction or a recovery attempt ended, as counted by the metrics. */
export type Outcome = 'confirmed' | 'cancelled' | 'failed' | 'parked' | 'pending';

/**
 * Spans and metrics through `@opentelemetry/api` only: without an installed SDK every call is
 * a no-op. Instruments are made when the `Tcc` is constructed, so install the SDK before that.
 */
export class Telemetry {
  readonly #tracer = trace.getTracer(SCOPE);
  readonly #transactions: Counter;
  readonly #duration: Histogram;
  readonly #recoveries: Counter;

  constructor(private readonly domain: string) {
    const meter = metrics.getMeter(SCOPE);
    this.#transactions = meter.createCounter('tcc.transactions', {
      description: 'Transactions ended by the process that began them, by outcome',
    });
    this.#duration = meter.createHistogram('tcc.transaction.duration', {
      description: 'Time from begin to the end of confirm or cancel',
      unit: 'ms',
    });
    this.#recoveries = meter.createCounter('tcc.recoveries', {
      description: 'Recovery attempts, by outcome',
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
        'tcc.global_id': of.globalId,
        'tcc.xid': of.xid,
        'tcc.domain': this.domain,
        'tcc.status': of.status ?? 'TRYING',
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
    if (record !== undefined) span.setAttribute('tcc.status', record.status);
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    span.end();
  }

  transactionEnded(outcome: Outcome, startedAt: number, now: number): void {
    const attributes = this.#attributes(outcome);
    this.#transactions.add(1, attributes);
    this.#duration.record(now - startedAt, attributes);
  }

  recovered(outcome: string): void {
    this.#recoveries.add(1, this.#attributes(outcome));
  }

  readonly #byOutcome = new Map<string, Attributes>();

  /** One frozen attribute set per outcome, so counting allocates nothing. */
  #attributes(outcome: string): Attributes {
    let attributes = this.#byOutcome.get(outcome);
    if (attributes === undefined) {
      attributes = Object.freeze({ 'tcc.domain': this.domain, 'tcc.outcome': outcome });
      this.#byOutcome.set(outcome, attributes);
    }
    return attributes;
  }
}
