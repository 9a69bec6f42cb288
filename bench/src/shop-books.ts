/**
 * The http bench's check that its figures are of correct work: once the runs are over, the
 * money of the three-service shop must be where the orders put it.
 */

/** A wallet's books as its `GET /state` gives them. */
interface WalletState {
  readonly accounts: Record<string, { readonly balance: number; readonly frozen: number }>;
}

/** What every paid order moved in each wallet, from the user to the shop's account. */
export interface OrderAmounts {
  readonly capital: number;
  readonly 'red-packet': number;
}

/** The books are not what the orders answered with 200 make them. */
export class BooksMismatchError extends Error {
  readonly code = 'BENCH_BOOKS_MISMATCH';

  constructor(readonly problems: readonly string[]) {
    super(`the shop's books do not add up after the runs:\n  ${problems.join('\n  ')}`);
    this.name = 'BooksMismatchError';
  }
}

/** How long the books get to settle: a bound on a hang, not on speed. */
const SETTLE_MS = 120_000;
const POLL_MS = 250;

/**
 * Waits until the order service has no unfinished transaction and no wallet holds anything
 * frozen, then checks that each wallet still holds its opening total (nothing made or lost),
 * that the shop's account got exactly `paid` times the order's amount, and that the user's
 * balance is the opening less that. Throws `BooksMismatchError` listing what is off.
 */
export async function checkBooks(options: {
  readonly orderUrl: string;
  readonly walletUrls: Readonly<Record<keyof OrderAmounts, string>>;
  readonly opening: number;
  readonly user: string;
  readonly shop: string;
  readonly amounts: OrderAmounts;
  /** Orders answered 200 (tcc and plain alike: each paid the same amounts). */
  readonly paid: number;
}): Promise<void> {
  const { orderUrl, walletUrls, opening, user, shop, amounts, paid } = options;
  const wallets = Object.keys(walletUrls) as (keyof OrderAmounts)[];
  const read = async () => ({
    open: ((await (await fetch(`${orderUrl}/state`)).json()) as { recordCount: number }).recordCount,
    books: Object.fromEntries(
      await Promise.all(
        wallets.map(async (w) => [w, (await (await fetch(`${walletUrls[w]}/state`)).json()) as WalletState]),
      ),
    ) as Record<keyof OrderAmounts, WalletState>,
  });
  const frozen = (s: WalletState) => Object.values(s.accounts).reduce((sum, a) => sum + a.frozen, 0);
  const until = Date.now() + SETTLE_MS;
  let state = await read();
  while (Date.now() < until && (state.open > 0 || wallets.some((w) => frozen(state.books[w]) > 0))) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    state = await read();
  }
  const problems: string[] = [];
  if (state.open > 0) problems.push(`order: ${state.open} transaction(s) still unfinished`);
  for (const w of wallets) {
    const { accounts } = state.books[w];
    const total = Object.values(accounts).reduce((sum, a) => sum + a.balance + a.frozen, 0);
    const spent = paid * amounts[w];
    if (total !== opening) problems.push(`${w}: holds ${total} in all, opened with ${opening}`);
    if (frozen(state.books[w]) !== 0) problems.push(`${w}: ${frozen(state.books[w])} still frozen`);
    if (accounts[shop]?.balance !== spent)
      problems.push(`${w}: the shop has ${accounts[shop]?.balance}, ${paid} paid orders make ${spent}`);
    if (accounts[user]?.balance !== opening - spent)
      problems.push(`${w}: ${user} has ${accounts[user]?.balance}, expected ${opening - spent}`);
  }
  if (problems.length > 0) throw new BooksMismatchError(problems);
}
