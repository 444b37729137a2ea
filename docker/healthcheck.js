#!/usr/bin/env node
// The container's HEALTHCHECK: asks grpc.health.v1.Health/Check (service "", the whole daemon) at the
// address given (default $TENSORMEM_HEALTH_ADDRESS, else the image's unix socket) and exits 0 when the
// answer is SERVING, 1 otherwise (NOT_SERVING while draining, no answer within 5 s, nothing listening).
// Plaintext: use the unix socket, or a TCP address without TLS.
//
//   node docker/healthcheck.js [ADDRESS]      e.g. unix:/run/tensormem/tensormemd.sock, 127.0.0.1:7070
'use strict';
const grpc = require('@grpc/grpc-js');
const { service } = require('grpc-health-check');

const address = process.argv[2] || process.env.TENSORMEM_HEALTH_ADDRESS || 'unix:/run/tensormem/tensormemd.sock';
const HealthClient = grpc.makeGenericClientConstructor(service, 'Health');
const client = new HealthClient(address, grpc.credentials.createInsecure());

client.check({ service: '' }, { deadline: Date.now() + 5000 }, (error, response) => {
  client.close();
  if (error) {
    process.stderr.write(`tensormem health ${address}: ${error.details || error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`tensormem health ${address}: ${response.status}\n`);
  process.exit(response.status === 'SERVING' ? 0 : 1);
});
