import { InvalidOptionError } from '@tcc/core/storage';

/** What `barrierQuery` needs to know of the business statement before it splices the fence in. */
export interface StatementShape {
  /** Where the fence CTE goes: after the statement's own `WITH [RECURSIVE]`, or 0 (it has none). */
  readonly spliceAt: number;
  /** The statement starts with its own `WITH`: the fence joins that list. */
  readonly hasWith: boolean;
  /** The highest `$n` placeholder (0: none). */
  readonly maxParam: number;
}

// Statements that accept a WITH in front (a data-modifying CTE included); `(` is a
// parenthesized SELECT, as in `(SELECT …) UNION (SELECT …)`.
const SPLICEABLE = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'VALUES', 'TABLE', 'WITH', '(']);
const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

/**
 * Reads just enough of `text` to splice a CTE in front of it: its first keyword (after
 * comments), its highest `$n` placeholder and whether a second statement follows a `;`. String
 * literals, quoted identifiers, dollar quotes and comments are skipped, so a `$1` or a `;`
 * inside them counts for nothing. The server parses the statement for real; this only refuses
 * what splicing would silently change: a statement that cannot take a `WITH`, or a second
 * statement (it would run outside the fence). `checkPlaceholders` then holds the placeholders
 * to the values (the fence's own parameters follow the caller's, so a `$3` too many would
 * read the fence's).
 */
export function statementShape(text: unknown, where: string): StatementShape {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new InvalidOptionError(
      `${where}: text must be one SQL statement (a string), got ${typeof text === 'string' ? JSON.stringify(text) : String(text)}`,
    );
  }
  const words: { word: string; end: number }[] = [];
  let maxParam = 0;
  let semicolon = -1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && next === '-') {
      const eol = text.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      i = blockCommentEnd(text, i);
      continue;
    }
    const tokenAt = i;
    if (semicolon >= 0) {
      throw new InvalidOptionError(
        `${where}: text must be one statement; a second one follows the ';' at offset ${semicolon}: ${excerpt(text, tokenAt)}`,
      );
    }
    if (c === ';') {
      semicolon = i++;
      continue;
    }
    if (c === "'") {
      i = quotedEnd(text, i, "'", false);
    } else if (c === '"') {
      i = quotedEnd(text, i, '"', false);
    } else if (c === '$' && next !== undefined && /[0-9]/.test(next)) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(text[j]!)) j++;
      maxParam = Math.max(maxParam, Number(text.slice(i + 1, j)));
      i = j;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i));
      if (tag === null) {
        i++;
      } else {
        const close = text.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
      }
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(text[j]!)) j++;
      const word = text.slice(i, j);
      // E'…' is the one literal whose backslashes escape a quote.
      if ((word === 'E' || word === 'e') && text[j] === "'") {
        i = quotedEnd(text, j, "'", true);
      } else {
        if (words.length < 2) words.push({ word: word.toUpperCase(), end: j });
        i = j;
      }
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(text[j]!)) j++;
      i = j;
    } else {
      if (words.length === 0 && c === '(') words.push({ word: '(', end: i });
      else if (words.length < 2) words.push({ word: c, end: i + 1 });
      i++;
    }
  }
  const first = words[0];
  if (first === undefined || !SPLICEABLE.has(first.word)) {
    throw new InvalidOptionError(
      `${where}: text must be one SELECT, INSERT, UPDATE, DELETE or MERGE statement (a WITH in front is ` +
        `fine), which can take the fence as a CTE; got ${excerpt(text, 0)}`,
    );
  }
  const hasWith = first.word === 'WITH';
  const second = words[1];
  const spliceAt = !hasWith ? 0 : second?.word === 'RECURSIVE' ? second.end : first.end;
  return { spliceAt, hasWith, maxParam };
}

/** Refuses `values` that do not hold exactly one value per `$n` of the statement. */
export function checkPlaceholders(shape: StatementShape, valueCount: number, where: string): void {
  if (shape.maxParam !== valueCount) {
    throw new InvalidOptionError(
      `${where}: values must hold one value per placeholder: text uses $1…$${shape.maxParam}, values has ${valueCount}`,
    );
  }
}

/** `text` with the CTE `cte` (`name AS (…)`) in front, as the first entry of its WITH list. */
export function spliceCte(text: string, shape: StatementShape, cte: string): string {
  if (!shape.hasWith) return `WITH ${cte}\n${text}`;
  return `${text.slice(0, shape.spliceAt)} ${cte},${text.slice(shape.spliceAt)}`;
}

function blockCommentEnd(text: string, from: number): number {
  // PostgreSQL's block comments nest.
  let depth = 0;
  let i = from;
  while (i < text.length) {
    if (text[i] === '/' && text[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (text[i] === '*' && text[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return i;
}

function quotedEnd(text: string, from: number, quote: string, backslashes: boolean): number {
  let i = from + 1;
  while (i < text.length) {
    const c = text[i];
    if (backslashes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (text[i + 1] !== quote) return i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  return i;
}

function excerpt(text: string, from: number): string {
  const rest = text.slice(from).trim();
  return JSON.stringify(rest.length > 60 ? `${rest.slice(0, 60)}…` : rest);
}
