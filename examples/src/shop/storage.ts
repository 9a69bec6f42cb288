import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { Tcc, type TransactionStorage } from '@tcc/core';
import { SqlStorage as BaseSqlStorage } from '@tcc/storage-sql';
import { CapitalService } from './capital.js';
import { Journal } from './journal.js';
import { Ledger } from './ledger.js';
import { OrderService } from './order.js';
import { RedPacketService } from './red-packet.js';

/** Where the demo keeps its log: `TCC_DEMO_DATA`, or `.tcc-data/shop` at the repository root. */
const DATA_DIR =
  process.env.TCC_DEMO_DATA ?? fileURLToPath(new URL('../../../.tcc-data/shop', import.meta.url));
const LOCK_WAIT_MS = 60_000;

/** SqlStorage that also closes the PGlite it runs on (a plain SqlStorage leaves that to its owner). */
class SqlStorage extends BaseSqlStorage {
  constructor(
    private readonly db: PGlite,
    private readonly unlock: () => Promise<void>,
  ) {
    super({ client: db });
  }

  override async close(): Promise<void> {
    await super.close();
    try {
      if (!this.db.closed) await this.db.close();
    } finally {
      await this.unlock();
    }
  }
}

/**
 * The one place the demo chooses its transaction log: SqlStorage on PGlite, an embedded
 * PostgreSQL kept in a local directory, so the log outlives the process. It migrates on
 * start, then finishes what a previous run left: a run killed halfway leaves records that
 * this run confirms or cancels before it places its own orders.
 *
 * What that finishes is the *log*. The shop's balances live in memory (ledger.ts) and start
 * afresh every run, so the leftover confirms and cancels run against this run's books,
 * where nothing of the old orders is frozen and they change nothing. A service whose own
 * data is in the same database would make them count, through `barrier()` of
 * `@tcc/storage-sql`.
 */
export async function openStorage(): Promise<TransactionStorage> {
  await mkdir(DATA_DIR, { recursive: true });
  const unlock = await lockDirectory(DATA_DIR);
  let db: PGlite | undefined;
  try {
    db = await PGlite.create(DATA_DIR);
    const storage = new SqlStorage(db, unlock);
    await storage.migrate();
    await finishLeftovers(storage);
    return storage;
  } catch (error) {
    await db?.close().catch(() => {});
    await unlock();
    throw error;
  }
}

/**
 * Drives every record a previous run left to its end, with the shop's services registered
 * on a throwaway Tcc of their own (so this run's journal and books are untouched). That run's
 * process is gone — the directory lock says nobody else has the log open — so none of its
 * tries can still be running: its roots are settled now rather than at their deadline.
 */
async function finishLeftovers(storage: SqlStorage): Promise<void> {
  const left = await storage.count({ domain: 'shop' });
  if (left === 0) return;
  console.log(`found ${left} transaction(s) left by a previous run in ${DATA_DIR}: finishing them`);
  const afterAnyDeadline = { now: () => Date.now() + 24 * 3_600_000 };
  const tcc = new Tcc({ domain: 'shop', storage, clock: afterAnyDeadline });
  const journal = new Journal();
  const capital = tcc.register(new CapitalService(new Ledger('capital', {}, 'shop'), journal));
  const redPackets = tcc.register(new RedPacketService(new Ledger('red packet', {}, 'shop'), journal));
  tcc.register(new OrderService(capital, redPackets, journal));
  try {
    let cursor: string | undefined;
    do {
      const page = await storage.findStuck({
        domain: 'shop',
        dueBefore: afterAnyDeadline.now(),
        limit: 100,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const record of page.records) {
        const result = await tcc.recover(record.xid, { force: true });
        console.log(`  ${record.xid} (${record.status}): ${result.outcome}`);
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  } finally {
    await tcc.stop();
  }
  console.log(`  steps: ${journal.take().join(' ') || 'none'} (against this run's fresh, in-memory books)`);
}

/**
 * PGlite is one process's database: a lock file keeps a second demo (say, two test runs at
 * once) from opening the directory at the same time. A lock left by a killed run is taken over.
 */
async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, '.demo.lock');
  const giveUpAt = Date.now() + LOCK_WAIT_MS;
  // Written aside then hard-linked into place: the lock appears atomically, with its pid in it.
  const mine = `${path}.${process.pid}`;
  await writeFile(mine, String(process.pid));
  for (;;) {
    try {
      await link(mine, path);
      await rm(mine, { force: true });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        await rm(mine, { force: true });
        throw error;
      }
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (!isAlive(owner)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > giveUpAt) {
      await rm(mine, { force: true });
      throw new Error(
        `${dir} is in use by process ${owner} (another demo run); set TCC_DEMO_DATA to another directory`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
