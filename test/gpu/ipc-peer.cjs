// The second process of the CUDA IPC test: opens the exporter's device allocation from its 64-byte
// handle through the compiled addon (dist/, built by `npm run build:ts`), then
//   read:  prints the sha256 of the bytes it sees in [OFFSET, OFFSET + LENGTH)
//   write: fills [OFFSET, OFFSET + LENGTH) with its own random bytes and prints their sha256
// as one JSON line on stdout, closes the mapping and exits 0; any error goes to stderr with exit 1.
// OFFSET defaults to 0 and LENGTH to the rest of the allocation (BYTES, as the handle's region_bytes).
//
//   node test/gpu/ipc-peer.cjs read|write DEVICE HANDLE_HEX BYTES [OFFSET LENGTH]
'use strict';
const { createHash, randomBytes } = require('node:crypto');
const path = require('node:path');
const { createBackend } = require(path.join(__dirname, '..', '..', 'dist', 'src', 'native', 'addon.js'));

const [mode, deviceText, handleHex, bytesText, offsetText, lengthText] = process.argv.slice(2);
try {
  const backend = createBackend('cuda', {});
  const bytes = Number(bytesText);
  const offset = Number(offsetText ?? 0);
  const length = lengthText === undefined ? bytes - offset : Number(lengthText);
  const chunk = backend.openIpcHandle(Number(deviceText), Buffer.from(handleHex, 'hex'), bytes);
  const info = backend.chunkInfo(chunk);
  let data;
  if (mode === 'read') {
    data = Buffer.alloc(length);
    backend.read(chunk, offset, data);
  } else if (mode === 'write') {
    data = randomBytes(length);
    backend.write(chunk, offset, data);
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
