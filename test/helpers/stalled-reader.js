// A client process that opens ReadArray streams and is then stopped (SIGSTOP) by the test, so that it
// reads nothing more: the daemon's writes to it stall as a hung or malicious reader's would.
// argv: <address> <lease token> <array id> <streams>; prints "sent" once the requests are out.
const { Metadata } = require('@grpc/grpc-js');
const { TensormemClient } = require('../../dist/src/client/tensormem-client');

const [address, token, arrayId, streams] = process.argv.slice(2);
const client = new TensormemClient(address);
const metadata = new Metadata();
metadata.set('authorization', `Bearer ${token}`);
for (let i = 0; i < Number(streams); i++) {
  const call = client.arrays.ReadArray({ array_id: arrayId }, metadata);
  call.on('error', () => undefined);
  call.on('data', () => undefined);
}
setTimeout(() => process.stdout.write('sent\n'), 200);
