/**
 * This package's version, for the instrumentation scope of its tracer and meter. Written from
 * package.json by scripts/write-versions.mjs (a constant, so that a bundled application needs no
 * package.json at run time); the telemetry tests check it against package.json.
 */
export const VERSION = '0.1.0';
