import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MemoryStorage, Tcc, type TransactionRecord } from '@tcc/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextHeader, origin, startService, tryRequest } from './support.js';

const exporter = new InMemorySpanExporter();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
});

afterAll(() => {
  trace.disable();
  context.disable();
});

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

describe('record.attachments.traceparent (for recovery spans to link to the original trace)', () => {
  it('is stored on a root created while a span is active, in that span’s trace', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    let seen: TransactionRecord | undefined;
    const step = tcc.compensable('step.run', {
      try: async () => {
        seen = await storage.get(tcc.current()!.xid);
      },
      confirm: () => {},
      cancel: () => {},
    });
    const outer = trace.getTracer('test').startSpan('request');
    await context.with(trace.setSpan(context.active(), outer), () => tcc.transaction(() => step()));
    outer.end();
    expect(seen?.attachments.traceparent).toMatch(TRACEPARENT);
    expect(seen?.attachments.traceparent?.split('-')[1]).toBe(outer.spanContext().traceId);
  });

  it('is stored on a branch created while the server has a span active, and absent without one', async () => {
    const capital = await startService('capital');
    try {
      const o = origin();
      await tryRequest(capital.url, contextHeader(o), { orderId: 'tp', user: 'alice', amount: 1 });
      const [branch] = await capital.records();
      // The branch's own tcc.try span is active when its record is written.
      expect(branch?.attachments.traceparent).toMatch(TRACEPARENT);
    } finally {
      await capital.close();
    }
    trace.disable();
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    let seen: TransactionRecord | undefined;
    const step = tcc.compensable('step.run', {
      try: async () => {
        seen = await storage.get(tcc.current()!.xid);
      },
      confirm: () => {},
      cancel: () => {},
    });
    await tcc.transaction(() => step());
    expect(seen?.attachments).toEqual({});
  });
});
