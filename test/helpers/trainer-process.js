// A trainer: opens a lease with the typed client (compiled, dist/), allocates and writes, keeps the
// lease alive, prints "ready <lease_id>" and then waits to be killed. Used by fault tests.
// argv: address tenantToken bytes releaseOnDisconnect(0|1)
const { TensormemClient } = require('../../dist/src/client/tensormem-client');

async function main() {
  const [address, tenantToken, bytes, release] = process.argv.slice(2);
  const client = new TensormemClient(address);
  const lease = await client.openLease({ tenantToken: tenantToken || undefined, clientName: `trainer-${process.pid}`, ttlSeconds: 60 });
  const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [Number(bytes)] });
  await lease.write(array.array_id, Buffer.alloc(Number(bytes), 7));
  lease.startKeepAlive(200, { releaseOnDisconnect: release === '1' });
  process.stdout.write(`ready ${lease.leaseId}\n`);
  setInterval(() => {}, 1 << 30);
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
