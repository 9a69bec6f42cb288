// Compiled by vitest's esbuild with ./tsconfig.json: standard decorators (no experimentalDecorators).
import { decoratorSuite } from '../shared/decorator-suite.js';
import * as classes from './classes.js';

decoratorSuite('standard', classes);
