import { Redis } from 'ioredis';
import { ConfigError } from '../../errors/config-error.js';
import type { RecoveryWorkerOptions } from '../../worker/options.js';
import { RecoveryWorker } from '../../worker/recovery-worker.js';
import type { Command } from '../context.js';
import { parseDuration, parsePositiveInt } from '../duration.js';
import { EXIT } from '../exit-codes.js';

export const worker: Command = {
  summary: 'run a recovery worker until SIGTERM/SIGINT (which drain and close it)',
  usage: 'tcc worker [--concurrency N] [--scan-every 10s] [--redis URL] [--queue NAME] [--prefix P]',
  flags: ['concurrency', 'scan-every', 'redis', 'queue', 'prefix'],
  args: 0,
  async run({ config, output, flags }) {
    const options: RecoveryWorkerOptions = {
      ...config.recovery,
      tcc: config.tcc,
      handleSignals: true,
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
    const closed = new Promise<void>((resolve) => recovery.once('closed', resolve));
    await recovery.start();
    const o = recovery.options;
    output.err(
      `tcc worker ${process.pid}: domain ${config.tcc.domain}, queue ${o.queueName} (prefix ${o.prefix}), concurrency ${o.concurrency}, scan every ${o.scanEveryMs} ms`,
    );
    await closed;
    own?.disconnect();
    output.err(`tcc worker ${process.pid}: drained and closed`);
    return EXIT.ok;
  },
};
