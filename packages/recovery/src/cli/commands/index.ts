import type { Command } from '../context.js';
import { decideCommand } from './decide.js';
import { ls } from './ls.js';
import { migrate } from './migrate.js';
import { purge } from './purge.js';
import { retry } from './retry.js';
import { show } from './show.js';
import { unpark } from './unpark.js';
import { worker } from './worker.js';

export const COMMANDS: Readonly<Record<string, Command>> = {
  worker,
  ls,
  show,
  retry,
  confirm: decideCommand('confirm'),
  cancel: decideCommand('cancel'),
  unpark,
  purge,
  migrate,
};
