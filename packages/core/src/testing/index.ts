/**
 * Test helpers of `@tcc/core/testing`. Importing this module imports vitest, an optional peer
 * dependency: use it from test files only.
 */

export { CountingStorage } from './counting-storage.js';
export { describeEndToEnd } from './end-to-end.js';
export { describeSingleDriver } from './single-driver.js';
export { describeStorageConformance, makeRecord, type StorageHarness } from './storage-conformance.js';
