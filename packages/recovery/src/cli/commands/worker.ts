import type { Server } from 'node:http';
import { constants } from 'node:os';
import { InvalidOptionError } from '@tcc/core';
import { Redis } from 'ioredis';
import { ConfigError } from '../../errors/config-error.js';
import { isClient } from '../../worker/connection.js';
import type { RecoveryWorkerOptions } from '../../worker/options.js';
import { RecoveryWorker } from '../../worker/recovery-worker.js';
import type { CloseOutcome } from '../../worker/shutdown.js';
import type { Command } from '../context.js';
import { parseDuration, parsePositiveInt } from '../duration.js';
import { EXIT } from '../exit-codes.js';
import { serveHealth } from '../health.js';
import type { Output } from '../output.js';
import { logFormatOf, logRecords } from '../record-log.js';

export const worker: Command = {
  summary:
    'run a recovery worker until SIGTERM/SIGINT (the first drains and closes it, a second exits at once)',
  flags: ['concurrency', 'scan-every', 'redis', 'queue', 'prefix', 'log', 'health-port', 'health-host'],
  args: [],
  async run({ config, output, flags }) {
    const options: RecoveryWorkerOptions = {
      ...config.recovery,
      tcc: config.tcc,
      // The command handles signals itself: a second one must end the process.
      handleSignals: false,
    } as RecoveryWorkerOptions;
    if (flags.concurrency !== undefined)
      options.concurrency = parsePositiveInt(flags.concurrency, '--concurrency');
    if (flags['scan-every'] !== undefined)
      options.scanEveryMs = parseDuration(flags['scan-every'], '--scan-every');
    if (flags.queue !== undefined) options.queueName = flags.queue;
    if (flags.prefix !== undefined) options.prefix = flags.prefix;
    const format = logFormatOf(flags.log);
    let own: Redis | undefined;
    const url =
      flags.redis ?? (config.recovery.connection === undefined ? process.env.TCC_REDIS_URL : undefined);
    if (url !== undefined) {
      own = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
      // Its failures reach the worker's `error` event through BullMQ; without a listener of its
      // own, ioredis would also print each one with its stack.
      own.on('error', () => {});
      options.connection = own;
    }
    if (options.connection === undefined) {
      throw new ConfigError(
        `config ${config.path} exports no recovery.connection for the queue; export one, or pass --redis <url> (or set TCC_REDIS_URL)`,
      );
    }
    const recovery = new RecoveryWorker(options);
    logRecords(recovery, format, config.tcc.domain, (line) => output.out(line));
    const errors = errorReporter(output);
    recovery.on('error', errors.report);
    let ended = false;
    const closed = new Promise<CloseOutcome>((resolve) =>
      recovery.once('closed', (outcome) => {
        ended = true;
        resolve(outcome);
      }),
    );
    let health: Server | undefined;
    if (flags['health-port'] !== undefined) {
      health = await serveHealth(flags['health-port'], flags['health-host'] ?? '127.0.0.1', () =>
        redisState(recovery),
      );
    } else if (flags['health-host'] !== undefined) {
      throw new InvalidOptionError('--health-host needs --health-port <n>');
    }
    stopOnSignals(recovery, output);
    try {
      // A signal while Redis is unreachable must not wait for a start that cannot finish.
      await Promise.race([recovery.start(), closed]);
    } catch (error) {
      await recovery.close();
      health?.close();
      own?.disconnect();
      const last = errors.first();
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(
        `the worker could not start: ${why}${last !== undefined && last !== why ? ` (Redis: ${last})` : ''}`,
        { cause: error },
      );
    }
    errors.started();
    const o = recovery.options;
    if (!ended) {
      const address = health?.address();
      output.err(
        `tccctl worker ${process.pid}: domain ${config.tcc.domain}, queue ${o.queueName} (prefix ${o.prefix}), concurrency ${o.concurrency}, scan every ${o.scanEveryMs} ms${
          address && typeof address === 'object'
            ? `, health on http://${address.address}:${address.port}/healthz`
            : ''
        }`,
      );
    }
    const outcome = await closed;
    health?.close();
    own?.disconnect();
    if (outcome === 'drained') {
      output.err(`tccctl worker ${process.pid}: drained and closed`);
      return EXIT.ok;
    }
    const why =
      o.closeTimeoutMs === Number.POSITIVE_INFINITY
        ? 'the graceful close failed'
        : `the drain did not finish within ${o.closeTimeoutMs} ms (is Redis reachable?)`;
    output.err(
      `tccctl worker ${process.pid}: ${why}; closed by force: the jobs it was running go to another worker through the stalled-job check`,
    );
    return EXIT.failure;
  },
};

/**
 * The worker's `error` events as stderr lines: none before it has started (a start that fails
 * says why in one message, with the last of them), then one per distinct message in a row, so
 * a Redis outage prints its error once rather than at every reconnect attempt.
 */
function errorReporter(output: Output) {
  let started = false;
  let last: string | undefined;
  let printed: string | undefined;
  return {
    report: (error: Error) => {
      // The first is the cause (connect ECONNREFUSED ...); later ones are its consequences.
      last ??= error.message;
      if (!started || printed === error.message) return;
      printed = error.message;
      output.err(`tccctl worker ${process.pid}: ${error.message}`);
    },
    started: () => {
      started = true;
    },
    first: () => last,
  };
}

/** The state (ioredis's `status`) of the queue's connection: `ready` when it can take commands. */
async function redisState(recovery: RecoveryWorker): Promise<string> {
  const connection = recovery.options.connection;
  if (isClient(connection)) return connection.status;
  // Made by BullMQ from connection options: its promise resolves once first connected.
  const backend = recovery.queue?.getBackend() as unknown as
    | { client?: Promise<{ status: string }> }
    | undefined;
  if (backend?.client === undefined) return 'starting';
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('connecting'), 1_000);
  });
  try {
    return await Promise.race([backend.client.then((c) => c.status), pending]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first SIGTERM or SIGINT drains and closes the worker (at most `closeTimeoutMs`); a second
 * one ends the process at once with 128 + the signal's number (143, 130), as a shell reports a
 * process killed by it. The handlers stay until the process ends, so a second signal also cuts
 * short whatever runs after the close (the config's `close()`).
 */
function stopOnSignals(recovery: RecoveryWorker, output: Output): void {
  let first: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = signal;
      output.err(
        `tccctl worker ${process.pid}: ${signal}: draining (${within(recovery.options.closeTimeoutMs)}; send SIGTERM or SIGINT again to exit at once)`,
      );
      void recovery.close();
      return;
    }
    output.err(
      `tccctl worker ${process.pid}: ${signal} again: exiting at once without draining; the jobs it was running go to another worker through the stalled-job check`,
    );
    process.exit(128 + constants.signals[signal]);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function within(ms: number): string {
  return ms === Number.POSITIVE_INFINITY ? 'however long it takes' : `within ${ms} ms`;
}
