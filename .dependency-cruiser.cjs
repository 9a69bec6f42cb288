/**
 * The layering of the packages, checked on every `npm test` (see README "Architecture").
 * Core's folders form layers that import in one direction only:
 *
 *   base → storage → codec, participants, context, telemetry → decorators → transaction
 *        → branch, recovery → http → tcc.ts (the facade) → index.ts
 *
 * A folder may import its own files and any layer below it, never one above or beside it.
 * Stores see core only through `@tcc/core/storage`; the recovery package through the entry
 * points; core itself loads no driver and no queue.
 */
const core = '^packages/core/src/';
/** The folders each core folder may import, besides itself. */
const below = {
  base: [],
  storage: ['base'],
  codec: ['base'],
  participants: ['base'],
  context: ['base', 'storage'],
  telemetry: ['base', 'storage'],
  decorators: ['base', 'participants'],
  transaction: ['base', 'storage', 'codec', 'participants', 'context', 'telemetry'],
  branch: ['base', 'storage', 'codec', 'participants', 'context', 'telemetry', 'transaction'],
  recovery: ['base', 'storage', 'codec', 'participants', 'context', 'telemetry', 'transaction'],
  http: ['base', 'storage', 'codec', 'participants', 'context', 'telemetry', 'transaction', 'branch'],
};

const layerRules = Object.entries(below).map(([folder, allowed]) => ({
  name: `core-${folder}-layer`,
  comment: `core/src/${folder}/ may import only ${allowed.length ? allowed.join(', ') : 'itself'}`,
  severity: 'error',
  from: { path: `${core}${folder}/` },
  to: {
    path: core,
    pathNot: [`${core}(${[folder, ...allowed].join('|')})/`],
  },
}));

const entryPoints = `${core}(index|storage/index|http/index|testing/index)\\.ts$`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'no import cycle anywhere (a type-only import cannot order module loading, so a cycle that passes through one is allowed inside a folder; across folders the layer rules forbid it)',
      severity: 'error',
      from: { path: '^packages/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    ...layerRules,
    {
      name: 'core-facade-below-index',
      comment: 'only index.ts and the testing kit import the facade',
      severity: 'error',
      from: { path: core, pathNot: [`${core}(index|testing/)`] },
      to: { path: `${core}tcc\\.ts$` },
    },
    {
      name: 'core-src-not-testing',
      comment: 'the testing kit is for tests; the runtime never imports it',
      severity: 'error',
      from: { path: core, pathNot: `${core}testing/` },
      to: { path: `${core}testing/` },
    },
    {
      name: 'stores-see-core-storage-only',
      comment: 'a store imports @tcc/core/storage and nothing else of core',
      severity: 'error',
      from: { path: '^packages/storage-[^/]+/src/' },
      to: { path: core, pathNot: `${core}storage/index\\.ts$` },
    },
    {
      name: 'packages-use-entry-points',
      comment: 'other packages import core through its entry points, never its files',
      severity: 'error',
      from: { path: '^packages/(recovery|storage-[^/]+)/', pathNot: '^packages/core/' },
      to: { path: core, pathNot: entryPoints },
    },
    {
      name: 'core-loads-no-driver',
      comment: 'core imports no database driver and no queue: stores and the worker bring them',
      severity: 'error',
      from: { path: core },
      to: { path: 'node_modules/(ioredis|pg|pg-pool|@electric-sql/pglite|bullmq|mysql2)/' },
    },
    {
      name: 'stores-load-no-queue',
      comment: 'BullMQ is the recovery package’s alone',
      severity: 'error',
      from: { path: '^packages/(core|storage-[^/]+)/src/' },
      to: { path: 'node_modules/bullmq/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@tcc/source', 'import', 'types', 'node', 'default'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
