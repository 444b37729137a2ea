/**
 * Preloaded (`node --require`) into a daemon under test: tensormemd's require of the daemon module
 * (the bulk of its loading time) first writes `{"event":"loading_daemon"}` to stderr, then holds the
 * process 800 ms, so that a test can signal it while its modules load, before main() runs.
 */
const Module = require('node:module');

const load = Module.prototype.require;
/** @this {import('node:module')} @param {string} request @param {unknown[]} rest */
Module.prototype.require = function slowRequire(request, ...rest) {
  if (request === '../daemon' && /tensormemd\.js$/.test(this.filename)) {
    process.stderr.write('{"event":"loading_daemon"}\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
  }
  return Reflect.apply(load, this, [request, ...rest]);
};
