/**
 * Preloaded (`node --require`) into a daemon under test: every server's listen() starts 500 ms late,
 * which holds tensormemd between building its services and serving, so that a test can signal it there.
 */
const net = require('node:net');

const listen = net.Server.prototype.listen;
/** @this {import('node:net').Server} @param {unknown[]} args (any of listen's overloads) */
net.Server.prototype.listen = function delayedListen(...args) {
  setTimeout(() => Reflect.apply(listen, this, args), 500);
  return this;
};
