// The second process of the CUDA IPC test: opens the exporter's device allocation from its 64-byte
// handle through the compiled addon (dist/, built by `npm run build:ts`), then
//   read:  prints the sha256 of the bytes it sees there
//   write: fills the allocation with its own random bytes and prints their sha256
// as one JSON line on stdout, closes the mapping and exits 0; any error goes to stderr with exit 1.
//
//   node test/gpu/ipc-peer.cjs read|write DEVICE HANDLE_HEX BYTES
'use strict';
const { createHash, randomBytes } = require('node:crypto');
const path = require('node:path');
const { createBackend } = require(path.join(__dirname, '..', '..', 'dist', 'src', 'native', 'addon.js'));

const [mode, deviceText, handleHex, bytesText] = process.argv.slice(2);
try {
  const backend = createBackend('cuda', {});
  const bytes = Number(bytesText);
  const chunk = backend.openIpcHandle(Number(deviceText), Buffer.from(handleHex, 'hex'), bytes);
  const info = backend.chunkInfo(chunk);
  let data;
  if (mode === 'read') {
    data = Buffer.alloc(bytes);
    backend.read(chunk, 0, data);
  } else if (mode === 'write') {
    data = randomBytes(bytes);
    backend.write(chunk, 0, data);
  } else {
    throw new Error(`Expected read or write for mode but received "${mode}"`);
  }
  backend.free(chunk);
  const live = backend.liveChunks();
  process.stdout.write(`${JSON.stringify({ sha256: createHash('sha256').update(data).digest('hex'), kind: info.kind, bytes: info.bytes, liveDevice: live.device })}\n`);
} catch (error) {
  process.stderr.write(`ipc-peer: ${error.code || ''} ${error.message}\n`);
  process.exit(1);
}
