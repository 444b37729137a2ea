// A client killed mid-transfer: writes an array over and over, over the HTTP data plane or a WriteArray
// stream, with the typed client (compiled, dist/), and prints "writing" once the first write is under
// way; the test kills it whenever it likes. Used by test/integration/user-model-fuzz.test.ts.
// argv: address token arrayId bytes via(http|grpc) dataAddress [ownLease(0|1)]
//   ownLease 1: `token` is a tenant token; opens a lease of its own (keep-alive with release on
//   disconnect), allocates `bytes` on the device and writes that array instead of arrayId.
const { TensormemClient } = require('../../dist/src/client/tensormem-client');
const { LeaseSession } = require('../../dist/src/client/lease-session');
const { dataPlaneEndpointFor } = require('../../dist/src/dataplane/data-plane-client');

async function main() {
  const [address, token, arrayIdText, bytesText, via, dataAddress, ownLease = '0'] = process.argv.slice(2);
  const bytes = Number(bytesText);
  const client = new TensormemClient(address, { dataPlane: { thresholdBytes: 0 }, chunkBytes: 64 * 1024 });
  let lease;
  let arrayId = arrayIdText;
  if (ownLease === '1') {
    lease = await client.openLease({ tenantToken: token, clientName: `killed-${process.pid}`, ttlSeconds: 2 });
    lease.startKeepAlive(200, { releaseOnDisconnect: true });
    arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], label: 'killed-child' })).array_id;
  } else {
    // The parent's lease: its token is the capability, and a session is made around it here.
    lease = new LeaseSession(client, { lease_id: '', token, ttl_seconds: 60, expires_at: null, tenant: '', client_name: '' }, dataPlaneEndpointFor(address, dataAddress));
  }
  const data = Buffer.alloc(bytes);
  let round = 0;
  for (;;) {
    data.fill(++round & 0xff);
    const write = via === 'http' ? lease.write(arrayId, data) : lease.writeGrpc(arrayId, data);
    if (round === 1) process.stdout.write('writing\n');
    await write;
  }
}

main().catch((error) => {
  process.stdout.write(`failed ${error.message}\n`);
  process.exit(3);
});
