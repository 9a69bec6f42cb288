import { constants } from 'node:os';
import { Redis } from 'ioredis';
import { ConfigError } from '../../errors/config-error.js';
import type { RecoveryWorkerOptions } from '../../worker/options.js';
import { RecoveryWorker } from '../../worker/recovery-worker.js';
import type { CloseOutcome } from '../../worker/shutdown.js';
import type { Command } from '../context.js';
import { parseDuration, parsePositiveInt } from '../duration.js';
import { EXIT } from '../exit-codes.js';
import type { Output } from '../output.js';

export const worker: Command = {
  summary:
    'run a recovery worker until SIGTERM/SIGINT (the first drains and closes it, a second exits at once)',
  usage: 'tcc worker [--concurrency N] [--scan-every 10s] [--redis URL] [--queue NAME] [--prefix P]',
  flags: ['concurrency', 'scan-every', 'redis', 'queue', 'prefix'],
  args: 0,
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
    let own: Redis | undefined;
    const url =
      flags.redis ?? (config.recovery.connection === undefined ? process.env.TCC_REDIS_URL : undefined);
    if (url !== undefined) {
      own = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
      options.connection = own;
    }
    if (options.connection === undefined) {
      throw new ConfigError(
        `config ${config.path} exports no recovery.connection for the queue; export one, or pass --redis <url> (or set TCC_REDIS_URL)`,
      );
    }
    const recovery = new RecoveryWorker(options);
    recovery.on('parked', ({ xid, error }) =>
      output.err(`parked ${xid}: ${error instanceof Error ? error.message : String(error)}`),
    );
    recovery.on('error', (error) => output.err(`worker error: ${error.message}`));
    let ended = false;
    const closed = new Promise<CloseOutcome>((resolve) =>
      recovery.once('closed', (outcome) => {
        ended = true;
        resolve(outcome);
      }),
    );
    stopOnSignals(recovery, output);
    try {
      // A signal while Redis is unreachable must not wait for a start that cannot finish.
      await Promise.race([recovery.start(), closed]);
    } catch (error) {
      await recovery.close();
      throw error;
    }
    const o = recovery.options;
    if (!ended) {
      output.err(
        `tcc worker ${process.pid}: domain ${config.tcc.domain}, queue ${o.queueName} (prefix ${o.prefix}), concurrency ${o.concurrency}, scan every ${o.scanEveryMs} ms`,
      );
    }
    const outcome = await closed;
    own?.disconnect();
    if (outcome === 'drained') {
      output.err(`tcc worker ${process.pid}: drained and closed`);
      return EXIT.ok;
    }
    const why =
      o.closeTimeoutMs === Number.POSITIVE_INFINITY
        ? 'the graceful close failed'
        : `the drain did not finish within ${o.closeTimeoutMs} ms (is Redis reachable?)`;
    output.err(
      `tcc worker ${process.pid}: ${why}; closed by force: the jobs it was running go to another worker through the stalled-job check`,
    );
    return EXIT.failure;
  },
};

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
        `tcc worker ${process.pid}: ${signal}: draining (${within(recovery.options.closeTimeoutMs)}; send SIGTERM or SIGINT again to exit at once)`,
      );
      void recovery.close();
      return;
    }
    output.err(
      `tcc worker ${process.pid}: ${signal} again: exiting at once without draining; the jobs it was running go to another worker through the stalled-job check`,
    );
    process.exit(128 + constants.signals[signal]);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function within(ms: number): string {
  return ms === Number.POSITIVE_INFINITY ? 'however long it takes' : `within ${ms} ms`;
}
