// Compiled by vitest's esbuild with packages/core/test/tsconfig.json: experimentalDecorators.
import { decoratorSuite } from '../shared/decorator-suite.js';
import * as classes from './classes.js';

decoratorSuite('legacy', classes);
