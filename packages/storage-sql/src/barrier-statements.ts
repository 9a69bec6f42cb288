import { createHash } from 'node:crypto';
import { type StatementShape, statementShape } from './barrier-text.js';

/** A statement as sent: its text, and the name pg prepares it under (none past the bound). */
export interface NamedStatement {
  readonly text: string;
  readonly name: string | undefined;
}

/** What `barrierQuery` learnt of one business text on one fence table, kept between calls. */
export interface KnownText {
  readonly shape: StatementShape;
  /** The statement of `key` (a phase) with its fence, built by `build` the first time. */
  statement(key: string, build: () => string): NamedStatement;
}

/**
 * The most business texts whose statements are named. An application that builds texts on the
 * fly (an IN list of varying length) would otherwise leave a prepared statement per text on
 * every connection; past the bound its texts are sent unnamed (parsed each time, as before).
 */
const MAX_KNOWN_TEXTS = 256;

const known = new Map<string, Known>();

/**
 * The shape of `text` and its phase statements, read once per fence table and text. Naming a
 * statement lets pg parse and plan it once per connection instead of on every phase: the
 * fence's CTE makes it costlier to plan than the business statement alone.
 */
export function knownText(barrierTable: string, text: unknown, where: string): KnownText {
  const key = typeof text === 'string' ? `${barrierTable}\u0000${text}` : undefined;
  const cached = key === undefined ? undefined : known.get(key);
  if (cached !== undefined) return cached;
  // Checks the text (throws InvalidOptionError); only a text that passed is remembered.
  const shape = statementShape(text, where);
  const entry = new Known(shape, key !== undefined && known.size < MAX_KNOWN_TEXTS);
  if (entry.named) known.set(key!, entry);
  return entry;
}

class Known implements KnownText {
  readonly #statements = new Map<string, NamedStatement>();

  constructor(
    readonly shape: StatementShape,
    readonly named: boolean,
  ) {}

  statement(key: string, build: () => string): NamedStatement {
    let statement = this.#statements.get(key);
    if (statement === undefined) {
      const text = build();
      // A hash of the whole text: two texts never share a name on a connection, where pg
      // would refuse the second ("Prepared statements must be unique").
      const name = this.named
        ? `tcc_bq_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`
        : undefined;
      statement = { text, name };
      this.#statements.set(key, statement);
    }
    return statement;
  }
}
