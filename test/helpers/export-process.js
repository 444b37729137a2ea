// A second process on the same host for ExportArray tests (uses the compiled dist/).
// argv:
//   read <shmName> <offset> <length>   maps the object read-only, prints "sha256 <hex>" of the bytes, exits
//   trainer <address>                  opens a lease (TTL 2 s, KeepAlive), allocates a 1 MiB HOST_ONLY
//                                      array, writes it, exports and maps it, prints
//                                      "exported <lease_id> <shmName> <sha256>" and waits to be killed
const { createHash } = require('node:crypto');
const { loadAddon } = require('../../dist/src/native/addon');
const { TensormemClient } = require('../../dist/src/client/tensormem-client');

/** @param {Buffer} data */
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'read') {
    const [name, offset, length] = args;
    const mapping = loadAddon().mapSharedMemory(name, false);
    process.stdout.write(`sha256 ${sha256(Buffer.from(mapping, Number(offset), Number(length)))}\n`);
    return;
  }
  if (mode === 'trainer') {
    const client = new TensormemClient(args[0]);
    const lease = await client.openLease({ clientName: `export-trainer-${process.pid}`, ttlSeconds: 2 });
    lease.startKeepAlive(200);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024 * 1024], placement: 'PLACEMENT_HOST_ONLY' });
    const data = Buffer.alloc(1024 * 1024, 9);
    await lease.write(array.array_id, data);
    const exported = await lease.exportArray(array.array_id);
    if (!exported.shm || !exported.bytes) throw new Error(`ExportArray of HOST_ONLY array ${array.array_id} gave no shared memory`);
    process.stdout.write(`exported ${lease.leaseId} ${exported.shm.name} ${sha256(exported.bytes)}\n`);
    setInterval(() => {}, 1000);
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
