import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Attributes, context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MemoryStorage, parseTraceparent, TCC_TELEMETRY, Tcc, type TransactionRecord } from '@tcc/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { activeTraceparent } from '../src/telemetry/traceparent.js';
import { VERSION } from '../src/telemetry/version.js';
import { InsufficientFunds, Ledger, registerShop } from './support/shop.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

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

  it('ends the tcc.recover span, marked as an error, when the store fails during the attempt', async () => {
    class FailingStorage extends MemoryStorage {
      down = false;
      override async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
        if (this.down) throw new Error('store down');
        return super.update(record, expectedVersion);
      }
    }
    const storage = new FailingStorage();
    const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs: 0 } });
    const capital = registerShop(tcc, new Ledger({ alice: 100 }));
    capital.failConfirm = 1;
    await expect(
      tcc.transaction(() => capital.debit({ id: 'a', from: 'alice', amount: 1 })),
    ).rejects.toThrow();
    const [record] = (await storage.list({})).records;
    exporter.reset();
    storage.down = true;
    await expect(tcc.recover(record!.xid)).rejects.toThrow('store down');
    const recover = exporter.getFinishedSpans().find((s) => s.name === 'tcc.recover');
    expect(recover?.status).toMatchObject({ code: 2, message: 'store down' });
  });
});

describe('telemetry catalog, units and instrumentation scope', () => {
  it('names every span, metric and attribute core emits, with units per OpenTelemetry conventions', async () => {
    const { tcc, capital, storage } = setup();
    capital.failConfirm = 1;
    await expect(
      tcc.transaction(() => capital.debit({ id: 'c', from: 'alice', amount: 1 })),
    ).rejects.toThrow();
    const [record] = (await storage.list({})).records;
    await tcc.recover(record!.xid);
    const spanNames = new Set<string>(Object.values(TCC_TELEMETRY.spans));
    const keys = new Set<string>(Object.values(TCC_TELEMETRY.attributes));
    const spans = exporter.getFinishedSpans();
    // The recovery's confirm runs within its tcc.recover span, which ends last.
    expect(spans.map((s) => s.name)).toEqual(['tcc.try', 'tcc.confirm', 'tcc.confirm', 'tcc.recover']);
    for (const span of spans) {
      expect(spanNames.has(span.name)).toBe(true);
      for (const key of Object.keys(span.attributes)) expect(keys.has(key)).toBe(true);
    }
    const { resourceMetrics } = await reader.collect();
    const descriptors = resourceMetrics.scopeMetrics
      .filter((scope) => scope.scope.name === '@tcc/core')
      .flatMap((scope) => scope.metrics.map((m) => m.descriptor));
    const { transactions, transactionDuration, recoveries } = TCC_TELEMETRY.metrics;
    for (const expected of [transactions, transactionDuration, recoveries]) {
      expect(descriptors.find((d) => d.name === expected.name)).toMatchObject({
        unit: expected.unit,
        description: expected.description,
      });
    }
    expect(transactionDuration.unit).toBe('s');
  });

  it('records the transaction duration in seconds', async () => {
    let now = 1_000_000;
    const tcc = new Tcc({ domain: 'timed', storage: new MemoryStorage(), clock: { now: () => now } });
    const capital = registerShop(tcc, new Ledger({ alice: 100 }));
    await tcc.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 1 });
      now += 1_500;
    });
    const { resourceMetrics } = await reader.collect();
    const points = resourceMetrics.scopeMetrics
      .flatMap((scope) => scope.metrics)
      .filter((m) => m.descriptor.name === TCC_TELEMETRY.metrics.transactionDuration.name)
      .flatMap((m): readonly { attributes: Attributes; value: unknown }[] => m.dataPoints)
      .filter((p) => p.attributes['tcc.domain'] === 'timed');
    expect(points).toHaveLength(1);
    expect(points[0]!.attributes['tcc.outcome']).toBe('confirmed');
    const value = points[0]!.value as { count: number; sum?: number; buckets: { boundaries: number[] } };
    expect(value).toMatchObject({ count: 1, sum: 1.5 });
    // The advised boundaries are seconds too, not the SDK's default millisecond ones.
    expect(value.buckets.boundaries).toEqual(TCC_TELEMETRY.metrics.transactionDuration.buckets);
  });

  it("gets the tracer and meter with the scope '@tcc/core' and the version of its package.json", async () => {
    const { tcc, capital } = setup();
    await tcc.transaction(() => capital.debit({ id: 'v', from: 'alice', amount: 1 }));
    for (const span of exporter.getFinishedSpans()) {
      expect(span.instrumentationScope).toEqual({ name: '@tcc/core', version, schemaUrl: undefined });
    }
    const { resourceMetrics } = await reader.collect();
    const scopes = resourceMetrics.scopeMetrics.map((m) => m.scope);
    expect(scopes).toContainEqual(expect.objectContaining({ name: '@tcc/core', version }));
  });

  it('carries the version of its package.json in src/ and in the built dist/ (scripts/write-versions.mjs)', async () => {
    expect(VERSION).toBe(version);
    // The built file sits as deep in dist/ as the source in src/: the same relative path.
    const built = new URL('../dist/telemetry/version.js', import.meta.url);
    expect(existsSync(new URL('../src/telemetry/version.ts', import.meta.url))).toBe(true);
    if (!existsSync(built)) return; // not built (typecheck builds it)
    const { VERSION: fromDist } = (await import(built.href)) as { VERSION: string };
    expect(fromDist).toBe(version);
  });

  it('parses the traceparent it stores, and refuses malformed ones', () => {
    const span = trace.getTracer('test').startSpan('request');
    const stored = context.with(trace.setSpan(context.active(), span), activeTraceparent);
    span.end();
    expect(parseTraceparent(stored)).toEqual({ ...span.spanContext(), isRemote: true });
    for (const bad of [
      undefined,
      '',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    ]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
  });
});
