import { inspect } from 'node:util';
import { JsonCodec, type ParticipantRecord } from '@tcc/core';
import { Operator } from '../../operator/operator.js';
import type { Command } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { isoTime, recordJson, table } from '../output.js';

export const show: Command = {
  summary: 'show one record: status, participants, retries, last error',
  flags: ['json'],
  args: ['xid'],
  async run({ config, output, args }) {
    const record = await new Operator(config.tcc).show(args[0]!);
    if (output.json) {
      output.out(JSON.stringify(recordJson(record)));
      return EXIT.ok;
    }
    const fields: [string, string][] = [
      ['xid', record.xid],
      ['globalId', record.globalId],
      ['type', record.type],
      ['status', record.status],
      ['domain', record.domain],
      ['rootDomain', record.rootDomain],
      ['retries', String(record.retries)],
      ['version', String(record.version)],
      ['created', isoTime(record.createdAt)],
      ['updated', isoTime(record.updatedAt)],
      ['deadline', isoTime(record.deadline)],
      ['due', isoTime(record.dueAt)],
      [
        'claimed by',
        record.claim === undefined ? '' : `${record.claim.owner} until ${isoTime(record.claim.until)}`,
      ],
      [
        'parent',
        record.parent === undefined
          ? ''
          : `${record.parent.domain} ${record.parent.xid}${record.parent.endpoint === undefined ? '' : ` at ${record.parent.endpoint}`}`,
      ],
      ['parked', record.parkedAt === undefined ? 'no' : isoTime(record.parkedAt)],
      ['lastError', record.lastError ?? ''],
    ];
    for (const [key, value] of Object.entries(record.attachments)) fields.push([`attachments.${key}`, value]);
    const width = Math.max(...fields.map(([k]) => k.length));
    for (const [key, value] of fields) output.out(`${key.padEnd(width)}  ${value}`);
    output.out('');
    output.out(
      table(
        ['PARTICIPANT', 'KIND', 'STATUS', 'TARGET', 'CONFIRM/CANCEL', 'ARGS'],
        record.participants.map((p) => [
          p.id,
          p.kind,
          p.status,
          p.kind === 'local' ? p.target : `${p.endpoint} (${p.xid})`,
          p.kind === 'local' ? `${p.confirm}/${p.cancel}` : '',
          p.kind === 'local' ? decodeArgs(p) : '',
        ]),
      ),
    );
    return EXIT.ok;
  },
};

/** The try's arguments as people read them; the raw encoding if the default codec cannot read them. */
function decodeArgs(participant: Extract<ParticipantRecord, { kind: 'local' }>): string {
  try {
    return inspect(new JsonCodec().decode(participant.args), {
      breakLength: Number.POSITIVE_INFINITY,
      depth: 4,
    });
  } catch {
    return participant.args;
  }
}
