// The Node library, `import { open, connect } from 'puffindb'` (lib/puffindb.js loads this
// file through tsx). Its public types are lib/puffindb.d.ts: the exports below are checked
// against them, so the declarations shipped cannot drift from what runs.

import type * as Api from '../../lib/puffindb.js';
import { PuffinError as RuntimeError } from '../errors.ts';
import { open as openEmbedded } from './embedded.ts';
import { connect as connectRemote } from './remote.ts';

export const open: typeof Api.open = openEmbedded;
export const connect: typeof Api.connect = connectRemote;
export const PuffinError: typeof Api.PuffinError = RuntimeError;
