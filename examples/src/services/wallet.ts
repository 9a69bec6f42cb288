import { createServer, type Server } from 'node:http';
import type { PGlite } from '@electric-sql/pglite';
import { Tcc } from '@tcc/core';
import { dataDir, secret, TEST_HOOKS } from './config.js';
import { openDatabase } from './database.js';
import { HttpError, id, listen, positiveInt, readJson, sendError, sendJson, sendStats } from './http.js';
import { PreparedStatements } from './prepared.js';

export interface Hold {
  orderId: string;
  userId: string;
  amount: number;
  delayMs?: number;
}

const SHOP = 'shop';

/**
 * A wallet service (capital: cash; red-packet: vouchers) with its books in its own PGlite:
 * - `POST /hold` (a branch, MANDATORY): the try freezes `amount` of `userId` for `orderId`;
 *   confirm pays it to the shop, cancel gives it back;
 * - `POST /pay`: the same payment without TCC, in one local transaction (the benchmark's
 *   baseline);
 * - `GET /state`: balances, and the transaction records not yet finished;
 * - `GET /stats`: SQL statements sent and CPU time used so far (for the benchmark).
 * Each hold row is the fence of its order: confirm and cancel act only on a `held` row, and a
 * cancel that finds no row writes a `released` one, so a try arriving after it does nothing.
 */
export async function startWallet(
  name: 'capital' | 'red-packet',
  url: string,
  opening: Record<string, number>,
): Promise<{ server: Server; tcc: Tcc }> {
  const { db, storage } = await openDatabase(dataDir(name));
  await migrate(db, opening);
  const sql = new PreparedStatements(db);
  const tcc = new Tcc({
    domain: name,
    storage,
    http: { secret: secret() },
    recovery: { recoverAfterMs: 2_000, intervalMs: 1_000 },
  });
  const hold = tcc.compensable(`${name}.hold`, {
    propagation: 'MANDATORY',
    try: async (h: Hold) => {
      if (TEST_HOOKS && h.delayMs) await new Promise((r) => setTimeout(r, h.delayMs));
      await freeze(sql, h);
    },
    confirm: (h: Hold) => spend(sql, h),
    cancel: (h: Hold) => release(sql, h),
  });
  tcc.startRecovery();
  const tccHandler = tcc.httpHandler();
  const server = createServer((req, res) =>
    tccHandler(req, res, async () => {
      try {
        if (req.method === 'POST' && req.url === '/hold') {
          const h = readHold(await readJson(req));
          await hold(h);
          return sendJson(res, 200, { held: h.amount });
        }
        if (req.method === 'POST' && req.url === '/pay') {
          const h = readHold(await readJson(req));
          await pay(sql, h);
          return sendJson(res, 200, { paid: h.amount });
        }
        if (req.method === 'GET' && req.url === '/stats') {
          return sendStats(res);
        }
        if (req.method === 'GET' && req.url === '/state') {
          const accounts = await db.query<{ user_id: string; balance: number; frozen: number }>(
            'SELECT user_id, balance, frozen FROM accounts ORDER BY user_id',
          );
          const open = await storage.count({ domain: name });
          const list = await storage.list({ domain: name, limit: 1000 });
          return sendJson(res, 200, {
            accounts: Object.fromEntries(
              accounts.rows.map((r) => [r.user_id, { balance: r.balance, frozen: r.frozen }]),
            ),
            records: list.records.map((r) => ({ xid: r.xid, status: r.status, type: r.type })),
            recordCount: open,
          });
        }
        sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `${req.method} ${req.url}` } });
      } catch (error) {
        sendError(res, error);
      }
    }),
  );
  await listen(server, url);
  return { server, tcc };
}

function readHold(body: Record<string, unknown>): Hold {
  return {
    orderId: id(body.orderId, 'orderId'),
    userId: id(body.userId, 'userId'),
    amount: positiveInt(body.amount, 'amount'),
    ...(typeof body.delayMs === 'number' ? { delayMs: body.delayMs } : {}),
  };
}

async function migrate(db: PGlite, opening: Record<string, number>): Promise<void> {
  await db.exec(`
    CREATE TABLE IF NOT EXISTS accounts (user_id text PRIMARY KEY, balance integer NOT NULL, frozen integer NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS holds (order_id text PRIMARY KEY, user_id text NOT NULL, amount integer NOT NULL, state text NOT NULL);
  `);
  for (const [user, balance] of Object.entries({ ...opening, [SHOP]: 0 })) {
    await db.query('INSERT INTO accounts (user_id, balance) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      user,
      balance,
    ]);
  }
}

/*
 * Each business step is one SQL statement (atomic on its own), so no BEGIN/COMMIT around it:
 * with PGlite every statement is a round through its WebAssembly engine and its files, and
 * the try and the confirm were nine of them per wallet and order, the plain payment four.
 * Each is prepared once and run as EXECUTE (`PreparedStatements`), the plain payment alike.
 */

/** The try: holds `amount` of `userId` for the order, once per order, if the funds are there. */
async function freeze(sql: PreparedStatements, h: Hold): Promise<void> {
  let result: { seen: number; held: number } | undefined;
  try {
    ({
      rows: [result],
    } = await sql.run<{ seen: number; held: number }>(
      'shop_freeze',
      `WITH seen AS (SELECT 1 FROM holds WHERE order_id = $1),
       debit AS (
         UPDATE accounts SET balance = balance - $3, frozen = frozen + $3
         WHERE user_id = $2 AND balance >= $3 AND NOT EXISTS (SELECT 1 FROM seen)
         RETURNING user_id),
       hold AS (
         INSERT INTO holds (order_id, user_id, amount, state) SELECT $1, $2, $3, 'held' FROM debit
         RETURNING order_id)
       SELECT (SELECT count(*) FROM seen)::int AS seen, (SELECT count(*) FROM hold)::int AS held`,
      [h.orderId, h.userId, h.amount],
    ));
  } catch (error) {
    // A hold of the same order inserted meanwhile (unique violation): nothing was changed.
    if ((error as { code?: string }).code !== '23505') throw error;
    result = { seen: 1, held: 0 };
  }
  if (result!.seen > 0)
    throw new HttpError(409, 'ORDER_SEEN', `order ${h.orderId} was already held or released`);
  if (result!.held === 0) {
    throw new HttpError(
      409,
      'INSUFFICIENT_FUNDS',
      `${h.userId} cannot pay ${h.amount} for order ${h.orderId}`,
    );
  }
}

/** Confirm: the held amount goes to the shop. A repeated confirm finds no `held` row: no-op. */
async function spend(sql: PreparedStatements, h: Hold): Promise<void> {
  await sql.run(
    'shop_spend',
    `WITH moved AS (
       UPDATE holds SET state = 'spent' WHERE order_id = $1 AND state = 'held' RETURNING user_id, amount)
     UPDATE accounts a SET
       frozen = a.frozen - CASE WHEN a.user_id = m.user_id THEN m.amount ELSE 0 END,
       balance = a.balance + CASE WHEN a.user_id = $2 THEN m.amount ELSE 0 END
     FROM moved m WHERE a.user_id = m.user_id OR a.user_id = $2`,
    [h.orderId, SHOP],
  );
}

/**
 * Cancel: the held amount goes back. With nothing held (a repeated cancel, or a cancel whose
 * try never ran) a `released` row with no hold fences the order, so a late try does nothing.
 */
async function release(sql: PreparedStatements, h: Hold): Promise<void> {
  await sql.run(
    'shop_release',
    `WITH moved AS (
       UPDATE holds SET state = 'released' WHERE order_id = $1 AND state = 'held' RETURNING user_id, amount),
     fence AS (
       INSERT INTO holds (order_id, user_id, amount, state)
       SELECT $1, $2, 0, 'released' WHERE NOT EXISTS (SELECT 1 FROM holds WHERE order_id = $1)
       ON CONFLICT DO NOTHING)
     UPDATE accounts a SET frozen = a.frozen - m.amount, balance = a.balance + m.amount
     FROM moved m WHERE a.user_id = m.user_id`,
    [h.orderId, h.userId],
  );
}

/** The plain payment (no TCC): `amount` from `userId` to the shop, if the funds are there. */
async function pay(sql: PreparedStatements, h: Hold): Promise<void> {
  const updated = await sql.run(
    'shop_pay',
    `UPDATE accounts SET balance = balance + CASE WHEN user_id = $1 THEN -$2::int ELSE $2::int END
     WHERE user_id IN ($1, $3) AND (SELECT balance FROM accounts WHERE user_id = $1) >= $2::int`,
    [h.userId, h.amount, SHOP],
  );
  if (updated.affectedRows === 0)
    throw new HttpError(409, 'INSUFFICIENT_FUNDS', `${h.userId} cannot pay ${h.amount}`);
}
