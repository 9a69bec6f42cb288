/**
 * `npm run demo:services`: the shop as three HTTP services, each its own process with its own
 * embedded database (PGlite under `.tcc-data/services`), talking TCC over HTTP. Places two
 * orders (one confirmed, one cancelled), prints the books, then keeps the services running for
 * curl (see examples/README.md) until Ctrl-C. `--once` exits after the two orders.
 */
import type { ChildProcess } from 'node:child_process';
import { SERVICES, urlOf } from './config.js';
import { launch } from './launch.js';

const once = process.argv.includes('--once');
const children: ChildProcess[] = [];
const stop = (): void => {
  for (const child of children) child.kill('SIGTERM');
};
process.once('SIGINT', () => {
  stop();
  process.exit(0);
});

try {
  for (const name of SERVICES) {
    children.push(await launch(name, process.env));
    console.log(`${name.padEnd(10)} ${urlOf(name)}`);
  }
  const run = Date.now().toString(36);
  for (const [orderId, userId, cash, redPacket] of [
    [`o-${run}-1`, 'alice', 30, 5],
    [`o-${run}-2`, 'bob', 500, 5],
  ] as const) {
    const response = await fetch(`${urlOf('order')}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId, userId, cash, redPacket }),
    });
    console.log(
      `POST /orders ${orderId} (${userId}: ${cash} cash + ${redPacket} red packet) -> ${response.status}`,
      await response.json(),
    );
  }
  for (const name of ['capital', 'red-packet'] as const) {
    const state = (await (await fetch(`${urlOf(name)}/state`)).json()) as { accounts: unknown };
    console.log(`${name} books:`, JSON.stringify(state.accounts));
  }
  if (once) stop();
  else console.log('services running; Ctrl-C stops them');
} catch (error) {
  console.error(error);
  stop();
  process.exitCode = 1;
}
