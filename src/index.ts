/**
 * The package's entry point (package.json "main" and "types"): the typed client, so that
 * `require('tensormem')` and `import { TensormemClient } from 'tensormem'` work. The same module is also
 * reachable at its own path, 'tensormem/dist/src/client/tensormem-client'.
 *
 * Only the client is exported here: loading it starts nothing, and the native addon is loaded only when
 * exportArray maps an array.
 */
export * from './client/tensormem-client';
