// Where the shared reference material lives: `shared/` sits beside the checkout (CI clones
// main with shared/ next to it), so resolve it from this file, never from a fixed path.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is compiled to dist/test/helpers/paths.js). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The golden images and their dumps: $SANLOCK_TS_VECTORS or <repo>/../shared/vectors. */
export const VECTORS_DIR = process.env.SANLOCK_TS_VECTORS ?? join(REPO_ROOT, '..', 'shared', 'vectors');

/** The recorded socket exchanges. */
export const WIRE_VECTORS_DIR = process.env.SANLOCK_TS_WIRE_VECTORS ?? join(VECTORS_DIR, 'wire');
