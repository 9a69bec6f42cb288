import type { ListQuery, TransactionRecord, TransactionStatus, TransactionType } from '@tcc/core';
import type { Command } from '../context.js';
import { parsePositiveInt } from '../duration.js';
import { EXIT } from '../exit-codes.js';
import { isoTime, recordJson, shorten, table } from '../output.js';
import { UsageError } from '../usage-error.js';

const STATUSES = ['TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING', 'CONFIRMED', 'CANCELLED'];

export const ls: Command = {
  summary: 'list transaction records',
  usage: 'tcc ls [--status S] [--parked] [--domain D] [--type ROOT|BRANCH] [--limit N | --all] [--json]',
  flags: ['status', 'parked', 'domain', 'type', 'limit', 'all', 'json', 'progress'],
  args: 0,
  async run({ config, output, flags }) {
    const status = flags.status?.toUpperCase();
    if (status !== undefined && !STATUSES.includes(status)) {
      throw new UsageError(
        `--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(flags.status)}`,
      );
    }
    const type = flags.type?.toUpperCase();
    if (type !== undefined && type !== 'ROOT' && type !== 'BRANCH') {
      throw new UsageError(`--type must be ROOT or BRANCH, got ${JSON.stringify(flags.type)}`);
    }
    if (flags.all && flags.limit !== undefined) throw new UsageError('give --limit or --all, not both');
    const limit = flags.limit === undefined ? 100 : parsePositiveInt(flags.limit, '--limit');
    const query: ListQuery = {
      ...(flags.domain === undefined ? {} : { domain: flags.domain }),
      ...(status === undefined ? {} : { status: status as TransactionStatus }),
      ...(type === undefined ? {} : { type: type as TransactionType }),
      ...(flags.parked ? { parked: true } : {}),
    };
    const records: TransactionRecord[] = [];
    let cursor: string | undefined;
    let more = false;
    do {
      const page = await config.tcc.storage.list({
        ...query,
        limit: flags.all ? 500 : limit,
        ...(cursor === undefined ? {} : { cursor }),
      });
      records.push(...page.records);
      cursor = page.cursor;
      if (flags.all) output.progress(`listed ${records.length} records…`);
      else more = cursor !== undefined;
    } while (flags.all && cursor !== undefined);
    output.done();
    if (output.json) {
      output.out(JSON.stringify(records.map(recordJson)));
      return EXIT.ok;
    }
    if (records.length === 0) {
      output.err('no records');
      return EXIT.ok;
    }
    output.out(
      table(
        ['XID', 'TYPE', 'STATUS', 'DOMAIN', 'RETRIES', 'UPDATED', 'PARKED', 'LAST ERROR'],
        records.map((r) => [
          r.xid,
          r.type,
          r.status,
          r.domain,
          String(r.retries),
          isoTime(r.updatedAt),
          isoTime(r.parkedAt),
          shorten(r.lastError),
        ]),
      ),
    );
    output.err(`${records.length} records${more ? ` (more: --limit or --all)` : ''}`);
    return EXIT.ok;
  },
};
