import { createRequire } from 'node:module';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ConfirmFailedError, InvalidOptionError, JsonCodec, TCC_TELEMETRY, Tcc } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { type ParkedEvent, RecoveryWorker, recoveryJobId } from '../src/index.js';
import { retryDelay } from '../src/worker/backoff.js';
import { ScanHandover } from '../src/worker/handover.js';
import { StuckScanner } from '../src/worker/stuck-scanner.js';
import { until } from './support.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush() {}
  protected async onShutdown() {}
}

const require = createRequire(import.meta.url);
const coreVersion = (require('@tcc/core/package.json') as { version: string }).version;
const recoveryVersion = (require('../package.json') as { version: string }).version;

const exporter = new InMemorySpanExporter();
const reader = new TestReader();
let redis: RedisHarness;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  redis = await openRedis();
});
afterAll(async () => {
  trace.disable();
  metrics.disable();
  context.disable();
  await redis?.end();
});

async function metric(name: string): Promise<number | undefined> {
  const { resourceMetrics } = await reader.collect();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name === name) return m.dataPoints.reduce((sum, p) => sum + (p.value as number), 0);
    }
  }
  return undefined;
}

/** Core's recovery attempts counted with this outcome so far. */
async function recoveries(outcome: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  let sum = 0;
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name !== TCC_TELEMETRY.metrics.recoveries.name) continue;
      for (const p of m.dataPoints) {
        if (p.attributes[TCC_TELEMETRY.attributes.outcome] === outcome) sum += p.value as number;
      }
    }
  }
  return sum;
}

/**
 * The shop's runtime. `recoverAfterMs` is also the length of a driver's claim: the tests that
 * count reads take one that no event-loop stall of a loaded machine lets lapse (a lapsed claim
 * is a correct, but extra, attempt with a fresh read).
 */
function shop(prefix: string, recoverAfterMs = 100) {
  const storage = new RedisStorage({ client: redis.client, prefix });
  const tcc = new Tcc({ domain: 'shop', storage, recovery: { recoverAfterMs } });
  return { storage, tcc };
}

async function queueClient() {
  return redis.newClient({ maxRetriesPerRequest: null });
}

describe('options', () => {
  it.each<[string, (tcc: Tcc, client: Redis) => unknown, RegExp]>([
    [
      'a client without maxRetriesPerRequest: null',
      (tcc) => new RecoveryWorker({ tcc, connection: new Redis({ lazyConnect: true }) }),
      /must be created with maxRetriesPerRequest: null .*got 20/,
    ],
    [
      'options with maxRetriesPerRequest: 3',
      (tcc) => new RecoveryWorker({ tcc, connection: { host: '127.0.0.1', maxRetriesPerRequest: 3 } }),
      /connection options must have maxRetriesPerRequest: null .*got 3/,
    ],
    [
      'no connection',
      (tcc) => new RecoveryWorker({ tcc } as never),
      /connection must be an ioredis Redis or Cluster/,
    ],
    [
      'no tcc',
      (_, c) => new RecoveryWorker({ tcc: {}, connection: c } as never),
      /tcc must be a Tcc instance/,
    ],
    [
      'concurrency 0',
      (tcc, c) => new RecoveryWorker({ tcc, connection: c, concurrency: 0 }),
      /concurrency must be a positive integer, got 0/,
    ],
    [
      'a queue name with ":"',
      (tcc, c) => new RecoveryWorker({ tcc, connection: c, queueName: 'a:b' }),
      /queueName .* without ":"/,
    ],
    [
      'jitter 2',
      (tcc, c) => new RecoveryWorker({ tcc, connection: c, backoff: { jitter: 2 } }),
      /backoff.jitter must be a number from 0 to 1/,
    ],
    [
      'an unknown option',
      (tcc, c) => new RecoveryWorker({ tcc, connection: c, retries: 3 } as never),
      /unknown option retries/,
    ],
  ])('refuses %s with a clear message', async (_name, make, message) => {
    const prefix = redis.prefix();
    const { tcc } = shop(prefix);
    const client = await queueClient();
    // Every command of an ioredis client, and every connection BullMQ would make from it, goes through these.
    const sent = vi.spyOn(client, 'sendCommand');
    const duplicated = vi.spyOn(client, 'duplicate');
    expect(() => make(tcc, client)).toThrow(InvalidOptionError);
    expect(() => make(tcc, client)).toThrow(message);
    // Nothing was written: no queue, no scheduler; the connection it was given was not used.
    expect(await redis.client.keys(`${prefix}*`)).toEqual([]);
    expect(sent).not.toHaveBeenCalled();
    expect(duplicated).not.toHaveBeenCalled();
  });

  it('retry delays start after the lease, grow exponentially, are capped and jittered', () => {
    const backoff = { delayMs: 100, maxDelayMs: 1_000, jitter: 0.5 };
    const top = () => 0; // random() = 0: no jitter taken off
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, 300, backoff, top))).toEqual([
      400, 500, 700, 1100, 1300, 1300,
    ]);
    expect(retryDelay(3, 300, backoff, () => 0.999)).toBeGreaterThanOrEqual(300 + 200);
    expect(retryDelay(3, 300, backoff, () => 0.999)).toBeLessThan(700);
  });

  it("recoverAfterMs and maxRetries default to the Tcc's recovery options; given ones win", async () => {
    const storage = new RedisStorage({ client: redis.client, prefix: redis.prefix() });
    const tcc = new Tcc({ domain: 'shop', storage, recovery: { recoverAfterMs: 1_234, maxRetries: 7 } });
    const connection = await queueClient();
    expect(new RecoveryWorker({ tcc, connection }).options).toMatchObject({
      recoverAfterMs: 1_234,
      maxRetries: 7,
    });
    expect(new RecoveryWorker({ tcc, connection, recoverAfterMs: 50, maxRetries: 2 }).options).toMatchObject({
      recoverAfterMs: 50,
      maxRetries: 2,
    });
    // Core's own defaults when the Tcc was given none.
    const plain = new Tcc({ domain: 'shop', storage });
    expect(new RecoveryWorker({ tcc: plain, connection }).options).toMatchObject({
      recoverAfterMs: plain.recoveryOptions.recoverAfterMs,
      maxRetries: plain.recoveryOptions.maxRetries,
    });
  });

  it('job ids are deterministic and acceptable to BullMQ', () => {
    expect(recoveryJobId('abc')).toBe('r.abc');
    expect(recoveryJobId('12')).toBe('r.12');
    expect(recoveryJobId('a:b%c')).toBe('r.a%3Ab%25c');
  });
});

describe('scan', () => {
  it('enqueues one job per stuck record with a step to take, and no duplicate on a second scan', async () => {
    const prefix = redis.prefix();
    const { tcc, storage } = shop(prefix);
    const old = Date.now() - 60_000;
    const due = Array.from({ length: 30 }, () =>
      makeRecord({ domain: 'shop', status: 'CONFIRMING', updatedAt: old }),
    );
    const trying = makeRecord({ domain: 'shop', updatedAt: old, deadline: Date.now() + 60_000 });
    const fresh = makeRecord({ domain: 'shop', status: 'CANCELLING', updatedAt: Date.now() + 60_000 });
    const other = makeRecord({ domain: 'stock', status: 'CONFIRMING', updatedAt: old });
    for (const r of [...due, trying, fresh, other]) await storage.create(r);
    const queue = new Queue('scan-test', { connection: await queueClient(), prefix: `${prefix}{q}` });
    const scanner = new StuckScanner({ tcc, queue, recoverAfterMs: 1_000, batchSize: 7, maxRetries: 3 });
    expect(await scanner.scan()).toBe(31); // found: the 30 due and the try inside its deadline
    expect(await scanner.scan()).toBe(31);
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => j.data.xid).sort()).toEqual(due.map((r) => r.xid).sort());
    expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(due.map((r) => recoveryJobId(r.xid))));
    await queue.close();
  });
});

describe('scan handover', () => {
  const at = 1_000_000;
  const records = (n: number) => Array.from({ length: n }, () => makeRecord({ domain: 'shop' }));

  it('hands a copy over once, and only while it is young enough', () => {
    const handover = new ScanHandover(10, 100);
    const [a, b] = records(2) as [ReturnType<typeof makeRecord>, ReturnType<typeof makeRecord>];
    handover.keep([a, b], at);
    expect(handover.take(a.xid, at + 99)).toBe(a);
    expect(handover.take(a.xid, at + 99)).toBeUndefined(); // taken already
    expect(handover.take(b.xid, at + 100)).toBeUndefined(); // too old
    expect(handover.size).toBe(0);
  });

  it('keeps at most limit copies: old ones make room, else the newest are not kept', () => {
    const handover = new ScanHandover(3, 100);
    const first = records(3);
    handover.keep(first, at);
    const second = records(2);
    handover.keep(second, at + 50); // all three kept are young: these two are not kept
    expect(handover.size).toBe(3);
    expect(handover.take(second[0]!.xid, at + 50)).toBeUndefined();
    handover.keep(second, at + 100); // the first three are too old now
    expect(handover.size).toBe(2);
    expect(handover.take(first[0]!.xid, at + 100)).toBeUndefined();
    expect(handover.take(second[1]!.xid, at + 100)).toBe(second[1]);
    // A newer copy of an xid replaces the older one.
    const [c] = records(1) as [ReturnType<typeof makeRecord>];
    handover.keep([c], at + 100);
    const newer = { ...c, version: c.version + 1 };
    handover.keep([newer], at + 150);
    expect(handover.take(c.xid, at + 150)).toBe(newer);
  });

  it('a scan keeps the records it enqueues, not the tries still inside their deadline', async () => {
    const prefix = redis.prefix();
    const { tcc, storage } = shop(prefix);
    const old = Date.now() - 60_000;
    const due = Array.from({ length: 12 }, () =>
      makeRecord({ domain: 'shop', status: 'CONFIRMING', updatedAt: old }),
    );
    const trying = makeRecord({ domain: 'shop', updatedAt: old, deadline: Date.now() + 60_000 });
    for (const r of [...due, trying]) await storage.create(r);
    const queue = new Queue('handover-test', { connection: await queueClient(), prefix: `${prefix}{q}` });
    const handover = new ScanHandover(100, 60_000);
    const scanner = new StuckScanner({
      tcc,
      queue,
      recoverAfterMs: 1_000,
      batchSize: 5,
      maxRetries: 3,
      handover,
    });
    expect(await scanner.scan()).toBe(13);
    expect(handover.size).toBe(12);
    expect(handover.take(trying.xid, Date.now())).toBeUndefined();
    for (const r of due) expect(handover.take(r.xid, Date.now())).toEqual(r);
    await queue.close();
  });
});

describe('recovery on BullMQ, in process', () => {
  it('parks a record that always fails after maxRetries; job spans link to its trace and parent the attempts; counters say so', async () => {
    const prefix = redis.prefix();
    // The failed confirm rests 2 s before a scan finds it; the job's own retries come sooner.
    const { tcc, storage } = shop(prefix, 2_000);
    let confirms = 0;
    const pay = tcc.compensable('shop.pay', {
      try: async (_n: number) => {},
      confirm: async () => {
        confirms++;
        throw new Error('card declined');
      },
      cancel: async () => {},
    });
    let xid = '';
    await expect(
      tcc.transaction(async () => {
        xid = tcc.current()!.xid;
        await pay(1);
      }),
    ).rejects.toBeInstanceOf(ConfirmFailedError);
    // The original request's trace, as the HTTP transport keeps it.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const record = (await storage.get(xid))!;
    record.attachments.traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
    await storage.update({ ...record, version: record.version + 1 }, record.version);
    exporter.reset();
    const failedBefore = await recoveries('failed');
    const parkedBefore = await recoveries('parked');

    const worker = new RecoveryWorker({
      tcc,
      connection: await queueClient(),
      prefix: `${prefix}{q}`,
      recoverAfterMs: 100,
      scanEveryMs: 100,
      maxRetries: 3,
      backoff: { delayMs: 20, maxDelayMs: 50 },
    });
    const parked: ParkedEvent[] = [];
    worker.on('parked', (event) => parked.push(event));
    const scans: number[] = [];
    worker.on('scanned', (found) => scans.push(found));
    await worker.start();
    try {
      await until('the record parked', async () => (await storage.get(xid))?.parkedAt !== undefined);
    } finally {
      await worker.close();
    }
    const after = (await storage.get(xid))!;
    expect(after).toMatchObject({ status: 'CONFIRMING', retries: 3 });
    expect(after.lastError).toMatch(/card declined/);
    expect(confirms).toBe(1 + 3); // the transaction's own confirm, then maxRetries attempts
    expect(parked.map((p) => p.xid)).toEqual([xid]);

    const finished = exporter.getFinishedSpans();
    const spans = finished.filter((s) => s.name === 'tcc.recovery.job' && s.links.length > 0);
    expect(spans.length).toBe(3);
    for (const span of spans) {
      expect(span.links[0]!.context.traceId).toBe(traceId);
      expect(span.spanContext().traceId).not.toBe(traceId); // a new trace, linked
      expect(span.attributes['tcc.xid']).toBe(xid);
      expect(span.instrumentationScope).toMatchObject({ name: '@tcc/recovery', version: recoveryVersion });
      // Core's span of the attempt is the job span's child, in its trace.
      const attempts = finished.filter((s) => s.parentSpanContext?.spanId === span.spanContext().spanId);
      expect(attempts.map((s) => s.name)).toEqual(['tcc.recover']);
      expect(attempts[0]!.spanContext().traceId).toBe(span.spanContext().traceId);
      expect(attempts[0]!.instrumentationScope).toMatchObject({ name: '@tcc/core', version: coreVersion });
    }
    // Two jobs failed and were retried; the third parked the record (the worker's maxRetries).
    expect(spans.map((s) => s.attributes['tcc.outcome'] ?? s.status.code)).toEqual([2, 2, 'parked']);
    // Core counts each attempt as it ended: the confirm failed three times. Parking by the
    // worker's lower maxRetries is the job's outcome, on its span.
    expect((await recoveries('failed')) - failedBefore).toBe(3);
    expect((await recoveries('parked')) - parkedBefore).toBe(0);
    // The gauge is what the last scan found; some scan found this record, and none found more.
    expect(Math.max(...scans)).toBe(1);
    expect(await metric('tcc.recovery.stuck')).toBe(scans.at(-1));
  });

  it('recovers stuck records and counts them; close() drains and leaves the caller its client', async () => {
    const prefix = redis.prefix();
    const { tcc, storage } = shop(prefix, 60_000);
    const confirmed: number[] = [];
    tcc.compensable('shop.pay', {
      try: async (_n: number) => {},
      confirm: async (n: number) => {
        confirmed.push(n);
      },
      cancel: async () => {},
    });
    const old = Date.now() - 60_000;
    const codec = new JsonCodec();
    for (let n = 0; n < 20; n++) {
      await storage.create(
        makeRecord({
          domain: 'shop',
          status: 'CONFIRMING',
          updatedAt: old,
          participants: [
            {
              id: 'p1',
              kind: 'local',
              target: 'shop.pay',
              confirm: 'confirm',
              cancel: 'cancel',
              args: codec.encode([n]),
              status: 'TRYING',
            },
          ],
        }),
      );
    }
    const before = await recoveries('confirmed');
    const client = await queueClient();
    // A scan's copies are handed over for scanEveryMs: at 60 s, every job of the scan start()
    // runs takes its copy however slowly the jobs get to run, and no second scan reads anew.
    const worker = new RecoveryWorker({
      tcc,
      connection: client,
      prefix: `${prefix}{q}`,
      recoverAfterMs: 100,
      scanEveryMs: 60_000,
    });
    const scans: number[] = [];
    worker.on('scanned', (found) => scans.push(found));
    const reads = vi.spyOn(storage, 'get');
    await worker.start();
    await until('all confirmed', async () => (await storage.count({ domain: 'shop' })) === 0);
    await worker.close();
    expect(confirmed.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(scans).toEqual([20]);
    // Each job ran on the copy its scan had read: no record was read again.
    expect(reads).not.toHaveBeenCalled();
    expect(await recoveries('confirmed')).toBe(before + 20);
    expect(await client.ping()).toBe('PONG');
    await expect(worker.start()).rejects.toThrow(/already started/);
  });

  it('a copy made stale after the scan costs a fresh read, never a wrong or lost step', async () => {
    const prefix = redis.prefix();
    const { tcc, storage } = shop(prefix, 60_000);
    const confirmed: number[] = [];
    tcc.compensable('shop.pay', {
      try: async (_n: number) => {},
      confirm: async (n: number) => {
        confirmed.push(n);
      },
      cancel: async () => {},
    });
    const old = Date.now() - 60_000;
    const codec = new JsonCodec();
    const xids: string[] = [];
    for (let n = 0; n < 5; n++) {
      const record = makeRecord({
        domain: 'shop',
        status: 'CONFIRMING',
        updatedAt: old,
        participants: [
          {
            id: 'p1',
            kind: 'local',
            target: 'shop.pay',
            confirm: 'confirm',
            cancel: 'cancel',
            args: codec.encode([n]),
            status: 'TRYING',
          },
        ],
      });
      await storage.create(record);
      xids.push(record.xid);
    }
    const admin = new Queue('tcc-recovery-shop', { connection: await queueClient(), prefix: `${prefix}{q}` });
    await admin.pause(); // the scan enqueues, no job runs yet
    const worker = new RecoveryWorker({
      tcc,
      connection: await queueClient(),
      prefix: `${prefix}{q}`,
      recoverAfterMs: 100,
      scanEveryMs: 60_000,
    });
    const outcomes: string[] = [];
    worker.on('recovered', (result) => outcomes.push(result.outcome));
    await worker.start();
    expect(await worker.scanNow()).toBe(5);
    // Another process writes every record after the scan read it: the copies are stale.
    for (const xid of xids) {
      const record = (await storage.get(xid))!;
      record.attachments.note = 'written after the scan';
      await storage.update({ ...record, version: record.version + 1 }, record.version);
    }
    // No other scan may run first: it would read the records afresh.
    await admin.removeJobScheduler(worker.schedulerId);
    for (const job of await admin.getJobs(['waiting', 'delayed', 'prioritized'])) {
      if (job.name === 'scan') await job.remove();
    }
    expect((await admin.getJobs(['waiting'])).length).toBe(5);
    const reads = vi.spyOn(storage, 'get');
    await admin.resume();
    try {
      await until('all confirmed', async () => (await storage.count({ domain: 'shop' })) === 0);
    } finally {
      await worker.close();
      await admin.close();
    }
    expect(confirmed.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(outcomes).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed', 'confirmed']);
    expect(reads).toHaveBeenCalledTimes(5); // one fresh read per stale copy
  });
});
