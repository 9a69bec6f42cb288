/**
 * One service of the shop in this process: `node examples/dist/services/service.js <name>`
 * with `name` one of order, capital, red-packet. Prints `ready <name> <url>` once it listens.
 */
import { SERVICES, type ServiceName, urlOf } from './config.js';
import { startOrder } from './order.js';
import { startWallet } from './wallet.js';

const name = process.argv[2] as ServiceName;
if (!SERVICES.includes(name)) {
  console.error(`usage: service.js <${SERVICES.join('|')}>`);
  process.exit(2);
}
const url = urlOf(name);
const { server, tcc } =
  name === 'order' ? await startOrder(url) : await startWallet(name, url, openingOf(name));
console.log(`ready ${name} ${url}`);

/** Opening balances; `SHOP_OPENING` (JSON, same for both wallets) overrides them, e.g. for the benchmark. */
function openingOf(wallet: 'capital' | 'red-packet'): Record<string, number> {
  if (process.env.SHOP_OPENING !== undefined)
    return JSON.parse(process.env.SHOP_OPENING) as Record<string, number>;
  return wallet === 'capital' ? { alice: 100, bob: 50 } : { alice: 20, bob: 10 };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    void tcc
      .stop()
      .then(
        () => tcc.storage.close(),
        () => {},
      )
      .finally(() => process.exit(0));
  });
}
