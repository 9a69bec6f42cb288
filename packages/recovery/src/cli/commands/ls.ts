import {
  InvalidOptionError,
  type ListQuery,
  type TransactionRecord,
  type TransactionStatus,
  type TransactionType,
} from '@tcc/core';
import { CorruptRecordsError } from '../../errors/corrupt-records-error.js';
import type { Command } from '../context.js';
import { parsePositiveInt } from '../duration.js';
import { EXIT } from '../exit-codes.js';
import { count, isoTime, recordJson, shorten, table } from '../output.js';
import { collectCorruptRecords, EXIT_CORRUPT_RECORDS } from './corrupt-records.js';

const STATUSES = ['TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING', 'CONFIRMED', 'CANCELLED'];

export const ls: Command = {
  summary: 'list transaction records (exit 8 if some could not be read: they are named)',
  flags: ['status', 'parked', 'domain', 'type', 'limit', 'all', 'json', 'progress'],
  args: [],
  async run({ config, output, flags }) {
    const status = flags.status?.toUpperCase();
    if (status !== undefined && !STATUSES.includes(status)) {
      throw new InvalidOptionError(
        `--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(flags.status)}`,
      );
    }
    const type = flags.type?.toUpperCase();
    if (type !== undefined && type !== 'ROOT' && type !== 'BRANCH') {
      throw new InvalidOptionError(`--type must be ROOT or BRANCH, got ${JSON.stringify(flags.type)}`);
    }
    if (flags.all && flags.limit !== undefined)
      throw new InvalidOptionError('give --limit or --all, not both');
    const limit = flags.limit === undefined ? 100 : parsePositiveInt(flags.limit, '--limit');
    const query: ListQuery = {
      ...(flags.domain === undefined ? {} : { domain: flags.domain }),
      ...(status === undefined ? {} : { status: status as TransactionStatus }),
      ...(type === undefined ? {} : { type: type as TransactionType }),
      ...(flags.parked ? { parked: true } : {}),
    };
    const { result, corrupt } = await collectCorruptRecords(async () => {
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
        if (flags.all) output.progress(`listed ${count(records.length, 'record')}…`);
        else more = cursor !== undefined;
      } while (flags.all && cursor !== undefined);
      return { records, more };
    });
    const { records, more } = result;
    output.done();
    const unreadable = corrupt.length === 0 ? undefined : new CorruptRecordsError(corrupt);
    if (output.json) {
      if (unreadable === undefined) {
        output.out(JSON.stringify(records.map(recordJson)));
        return EXIT.ok;
      }
      // One document, in the shape of the command line's errors, with what could be listed.
      output.out(
        JSON.stringify({
          error: { code: unreadable.code, message: unreadable.message },
          corrupt,
          records: records.map(recordJson),
        }),
      );
      output.err(`tccctl: ${unreadable.message}`);
      return EXIT_CORRUPT_RECORDS;
    }
    if (records.length === 0 && unreadable === undefined) {
      output.err('no records');
      return EXIT.ok;
    }
    const tables: string[] = [];
    if (records.length > 0) {
      tables.push(
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
    }
    if (unreadable !== undefined) {
      tables.push(
        table(
          ['CORRUPT RECORD', 'PROBLEM'],
          corrupt.map((c) => [c.key, shorten(c.reason, 100)]),
        ),
      );
    }
    output.out(tables.join('\n\n'));
    output.err(`${count(records.length, 'record')}${more ? ` (more: --limit or --all)` : ''}`);
    if (unreadable === undefined) return EXIT.ok;
    output.err(`tccctl: ${unreadable.message}`);
    return EXIT_CORRUPT_RECORDS;
  },
};
