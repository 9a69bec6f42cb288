import { audit } from './audit.js';
import { confirmedOrder, confirmFailsOnce, overdrawnOrder } from './scenarios.js';
import { openShop } from './shop.js';
import { openStorage } from './storage.js';

const storage = await openStorage();
try {
  const shop = openShop(storage);
  console.log(
    `tcc shop demo: order, capital and red-packet services in one process, log in ${storage.constructor.name}`,
  );
  console.log('("steps" are the calls each service received, in order; ! marks one that threw)');
  const problems: string[] = [];
  try {
    for (const scenario of [confirmedOrder, overdrawnOrder, confirmFailsOnce]) {
      problems.push(...(await scenario(shop)));
    }
  } finally {
    // Stops the recovery poller and waits for background confirms, so the process can exit.
    await shop.tcc.stop();
  }
  console.log('\nAt the end:');
  problems.push(...(await audit(shop)));
  if (problems.length > 0) {
    console.error(`\nSomething is wrong:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    process.exitCode = 1;
  }
} finally {
  await storage.close();
}
