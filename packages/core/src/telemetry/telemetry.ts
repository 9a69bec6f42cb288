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
import type { TransactionRecord } from '../transaction/record.js';

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

  start(name: PhaseSpan, globalId: string, xid: string, status: string): Span {
    return this.#tracer.startSpan(name, {
      attributes: {
        'tcc.global_id': globalId,
        'tcc.xid': xid,
        'tcc.domain': this.domain,
        'tcc.status': status,
      },
    });
  }

  /** Runs `fn` with `span` active, so spans the user's code starts become its children. */
  within<T>(span: Span, fn: () => Promise<T>): Promise<T> {
    if (!span.isRecording()) return fn();
    return context.with(trace.setSpan(context.active(), span), fn);
  }

  end(span: Span, record: Pick<TransactionRecord, 'status'> | undefined, error?: unknown): void {
    if (record !== undefined) span.setAttribute('tcc.status', record.status);
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }

  transactionEnded(outcome: Outcome, startedAt: number, now: number): void {
    const attributes: Attributes = { 'tcc.domain': this.domain, 'tcc.outcome': outcome };
    this.#transactions.add(1, attributes);
    this.#duration.record(now - startedAt, attributes);
  }

  recovered(outcome: string): void {
    this.#recoveries.add(1, { 'tcc.domain': this.domain, 'tcc.outcome': outcome });
  }
}
