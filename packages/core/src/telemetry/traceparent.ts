import { context, isSpanContextValid, trace } from '@opentelemetry/api';

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
