import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MemoryStorage, Tcc } from '@tcc/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InsufficientFunds, Ledger, registerShop } from './support/shop.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush() {}
  protected async onShutdown() {}
}

const exporter = new InMemorySpanExporter();
const reader = new TestReader();
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});

afterAll(() => {
  trace.disable();
  metrics.disable();
  context.disable();
});

beforeEach(() => exporter.reset());

function setup() {
  const storage = new MemoryStorage();
  const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
  const ledger = new Ledger({ alice: 100 });
  return { storage, tcc, ledger, capital: registerShop(tcc, ledger) };
}

async function counted(name: string): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const out: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        const key = String(point.attributes['tcc.outcome']);
        const value = point.value;
        out[key] = typeof value === 'number' ? value : (value as { count: number }).count;
      }
    }
  }
  return out;
}

describe('OpenTelemetry', () => {
  it('records a tcc.try and a tcc.confirm span with the transaction attributes', async () => {
    const { tcc, capital } = setup();
    let globalId = '';
    await tcc.transaction(async () => {
      globalId = tcc.current()!.globalId;
      await capital.debit({ id: 'a', from: 'alice', amount: 1 });
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['tcc.try', 'tcc.confirm']);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'tcc.global_id': globalId,
        'tcc.xid': globalId,
        'tcc.domain': 'order',
      });
    }
    expect(spans[0]!.attributes['tcc.status']).toBe('TRYING');
    expect(spans[1]!.attributes['tcc.status']).toBe('CONFIRMED');
  });

  it('makes spans started in the body children of tcc.try, and marks a failed try as an error', async () => {
    const { tcc, capital } = setup();
    const outcome = tcc.transaction(async () => {
      trace.getTracer('app').startActiveSpan('app.work', (span) => span.end());
      await capital.debit({ id: 'a', from: 'alice', amount: 1_000 });
    });
    await expect(outcome).rejects.toBeInstanceOf(InsufficientFunds);
    const spans = exporter.getFinishedSpans();
    const tryspan = spans.find((s) => s.name === 'tcc.try')!;
    const work = spans.find((s) => s.name === 'app.work')!;
    expect(work.parentSpanContext?.spanId).toBe(tryspan.spanContext().spanId);
    expect(tryspan.status.code).toBe(2);
    expect(spans.find((s) => s.name === 'tcc.cancel')?.attributes['tcc.status']).toBe('CANCELLED');
  });

  it('records a tcc.recover span and counts transactions and recoveries by outcome', async () => {
    const { tcc, capital, storage } = setup();
    const before = await counted('tcc.transactions');
    capital.failConfirm = 1;
    await expect(
      tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 1 })),
    ).rejects.toThrow();
    await expect(
      tcc.transaction(() => capital.debit({ id: 'b', from: 'alice', amount: 1_000 })),
    ).rejects.toThrow();
    const [record] = (await storage.list({})).records;
    await tcc.recover(record!.xid);
    const spans = exporter.getFinishedSpans().map((s) => s.name);
    expect(spans).toContain('tcc.recover');
    const after = await counted('tcc.transactions');
    expect((after.pending ?? 0) - (before.pending ?? 0)).toBe(1);
    expect((after.cancelled ?? 0) - (before.cancelled ?? 0)).toBe(1);
    expect((await counted('tcc.recoveries')).confirmed).toBeGreaterThanOrEqual(1);
    expect((await counted('tcc.transaction.duration')).cancelled).toBeGreaterThanOrEqual(1);
  });
});
