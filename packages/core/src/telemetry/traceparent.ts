import { context, isSpanContextValid, type SpanContext, TraceFlags, trace } from '@opentelemetry/api';

// The W3C Trace Context `traceparent` format, both ways: core writes it into records, recovery
// (core's or the BullMQ worker's, maybe in another process hours later) reads it back.

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The W3C `traceparent` of the span active now, or `undefined` without one (always the case
 * when no OpenTelemetry SDK is installed). Stored in `record.attachments.traceparent` so that
 * recovery, maybe in another process hours later, can link its span to the original trace.
 */
export function activeTraceparent(): string | undefined {
  const span = trace.getSpanContext(context.active());
  if (span === undefined || !isSpanContextValid(span)) return undefined;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${span.traceId}-${span.spanId}-${flags}`;
}

/**
 * The span context of a W3C `traceparent` (as `record.attachments.traceparent` keeps it), to
 * link a recovery span to the transaction's original trace; `undefined` if it is not a valid one.
 */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined;
  const match = TRACEPARENT.exec(value.trim().toLowerCase());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
}
