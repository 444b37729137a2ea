#!/usr/bin/env node
/** tensormemctl: the command-line client of tensormemd. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { joinOptionValues } from '../cli/option-values';
import { connectivityState } from '@grpc/grpc-js';
import { TensormemClient } from '../client/tensormem-client';
import { connectErrorMessage } from '../cli/connect-error';
import { renderTable } from '../client/table';
import { formatIec } from '../units';
import { daemonFacts, hasErrors, proposedFacts, proposedSubject, renderReport, report } from '../cli/doctor-command';
import { diffSnapshots, readSnapshotFile, renderDiff } from '../cli/snapshot-diff';
import { fileTarget, replaceFile } from '../cli/replace-file';
import { capText, runTop } from '../cli/top';
import { arraysView } from '../cli/arrays';
import { InterruptedError, getFile, getToStream, interruptible, putFile, putStream } from '../cli/transfer';
import type { PutOptions } from '../cli/transfer';
import { stdinPieces } from '../cli/stdin-pieces';
import { deviceQuotaShare, quotaShare } from '../cli/quota-share';
import { tenantState } from '../cli/tenant-state';
import { UsageError, asUsage } from '../cli/usage-error';
import { DEFAULT_DAEMON_ADDRESS, checkDaemonAddress, connectionFlags, tlsOptions } from '../cli/address';
import { parseDurationMs } from '../config/sizes';
import { MIN_WATCH_INTERVAL_MS } from '../service/memory-service';
import { MAX_TTL_SECONDS } from '../config/config';
import { packageVersion } from '../package-root';
import { STDOUT_CLOSED_EXIT_CODE, StdoutWriteError, stdoutWriter } from '../cli/stdout';
import { counted } from '../counted';

const HELP = `Usage: tensormemctl [--address ADDR] [-o table|json] [--token TOKEN] <command>

Commands:
  info      memory per device pool, host pool, process and tenant (GetMemoryInfo)
  leases [--tenant NAME]         open leases: tenant, client, bytes, arrays, expiry (ListLeases; --tenant:
                                 only that tenant's; another tenant's than the --token's needs an admin one)
  arrays    arrays: of the lease of a lease --token (ListArrays), or every array block by owner
            (GetMemorySnapshot; under a tenants file, with an admin --token)
  config    the daemon's effective configuration and where each value came from (GetConfig)
  tenants   usage of each tenant against its quota, guarantee and max leases (GetMemoryInfo); STATE: active,
            dropped (a tenants file reload dropped it; listed until its leases end and its memory is freed),
            evicting (evict --tenant is closing its leases) or "dropped, evicting"
  evict ID | --tenant NAME       close lease ID, or every lease tenant NAME has open, and free what they
                                 hold (EvictLease; needs an admin --token)
  doctor    check the running daemon's configuration against the seed's common pitfalls; exit 1 on an error
  doctor -- [tensormemd flags]   check a proposed configuration offline (with --config FILE, --vram, --ram)
  snapshot [-f FILE]             save GetMemorySnapshot (every block and its owner) as JSON (stdout without -f)
  snapshot diff A B              what appeared and disappeared between two snapshots, by tenant/lease/label
                                 (files of snapshot -f, or /api/snapshot of --metrics-listen saved as it is)
  top [--once] [--interval D]    live view of pools, host, process, tenants and the biggest leases (q quits)
  put FILE [--array ID]          stream FILE (a regular file) into array ID (--token: its lease's token),
                                 or into a new array (--shape, --dtype, default uint8 [file size]) in a new lease
  put - --array ID | --shape N   stream stdin into array ID, or a new array of --shape (and --dtype): stdin
                                 must give exactly the array's bytes, else exit 1 (./- is a file named "-")
  get --array ID FILE            stream array ID (--token: its lease's token) into FILE (- for stdout)
                                 (Ctrl-C stops either after cleaning up: put closes the lease it opened,
                                 get removes its temporary file; exit 130)

Flags:
  --address ADDR   daemon address: HOST:PORT or unix:PATH (default $TENSORMEM_ADDRESS or unix:/tmp/tensormemd.sock)
  -o, --output F   table (default) or json
  --token TOKEN    a lease, tenant or admin token (sent as authorization: Bearer); default $TENSORMEM_TOKEN
  --timeout D      how long each call to the daemon may take (default 10s; snapshot, and arrays of every
                   block, 2m; put/get, each 16 MiB piece, 1m: at least 280 KB/s); a slower link needs more;
                   top: how late past --interval a report may be before it gives up (exit 1)
  --tls-ca FILE    TLS to a daemon that serves it on TCP (tensormemd --tls-cert): the PEM CA that signed its
                   certificate; --tls-cert FILE --tls-key FILE: a client certificate (tensormemd --tls-client-ca);
                   --tls-server-name NAME: the name to check the certificate for (default the address's host)
  -h, --help       this help
  --version        this tool's version (a daemon's: tensormemctl config)
  doctor:   --config FILE (a tensormemd config file), --vram SIZE[,SIZE...] (judge for CUDA devices of
            these sizes), --ram SIZE (the target's RAM; default this machine's)
  snapshot: -f, --file FILE
  top:      --once (one frame; also when stdout is not a terminal or with -o json: {address, info,
            leases}, leases null when the token may not list them), --interval DURATION (at least 50ms; default 1s);
            q or Ctrl-C quits (exit 0), SIGTERM or SIGHUP ends it with 128 + N, the terminal restored
  put/get:  --array ID, --shape N[,N...], --dtype NAME (float32, uint8, ...), --placement device|host-only,
            --label TEXT, --tenant NAME, --ttl DURATION (of the lease put opens, at most 168h, counted from
            put's end: put renews it while it runs; it ends the array's life; default the daemon's --lease-ttl)

Exit status: 0 done; 1 failed (the daemon refused, a file, stdin or stdout could not be read or written,
put - got fewer or more bytes than the array's, doctor found an error); 2 a usage error (unknown command
or flag, a flag the command does not take, a bad flag value, a missing or extra argument); 141 the reader
of stdout went away (| head); 128 + N stopped by signal N.`;

const OPTIONS = {
  // An empty variable is unset, as tensormemd reads its TENSORMEM_* variables.
  address: { type: 'string', default: process.env.TENSORMEM_ADDRESS || DEFAULT_DAEMON_ADDRESS },
  output: { type: 'string', short: 'o', default: 'table' },
  token: { type: 'string', default: process.env.TENSORMEM_TOKEN },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
  config: { type: 'string' },
  vram: { type: 'string' },
  ram: { type: 'string' },
  file: { type: 'string', short: 'f' },
  once: { type: 'boolean', default: false },
  interval: { type: 'string', default: '1s' },
  array: { type: 'string' },
  shape: { type: 'string' },
  dtype: { type: 'string' },
  placement: { type: 'string', default: 'device' },
  label: { type: 'string' },
  tenant: { type: 'string' },
  ttl: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-server-name': { type: 'string' },
  timeout: { type: 'string' },
} as const;

/** Flags every command takes: where the daemon is and how to talk to it, and how to print. */
const GLOBAL_FLAGS = new Set(['address', 'output', 'token', 'timeout', 'help', 'version', 'tls-ca', 'tls-cert', 'tls-key', 'tls-server-name']);

/** The flags of each command beyond GLOBAL_FLAGS. */
const COMMAND_FLAGS: Record<string, readonly string[]> = {
  info: [],
  arrays: [],
  config: [],
  tenants: [],
  leases: ['tenant'],
  evict: ['tenant'],
  doctor: ['config', 'vram', 'ram'],
  snapshot: ['file'],
  top: ['once', 'interval'],
  put: ['array', 'shape', 'dtype', 'placement', 'label', 'tenant', 'ttl'],
  get: ['array'],
};

/** `config`'s VALUE column at most this wide: a longer value (cuDNN's load errors) goes on over continuation lines. */
const CONFIG_VALUE_WIDTH = 60;

/** put --array writes into an array that exists: these describe the new array and lease put would otherwise make. */
const NEW_ARRAY_FLAGS = ['shape', 'dtype', 'placement', 'label', 'tenant', 'ttl'];

/**
 * A flag the command does not take is a usage error (exit 2), never ignored: `info --tenant a` would
 * print every tenant, and `put --array ID --ttl 1m` or `--shape 4,4` would write into the array as it
 * is, with its lease's TTL, and exit 0 as if the flag had been applied.
 */
function refuseFlagsNotTaken(positionals: string[], values: { array?: string }, tokens: ReadonlyArray<{ kind: string; name?: string; rawName?: string; value?: string }>): void {
  const command = positionals[0];
  // An unknown command is told as such (below), not as one that takes no flags.
  if (!command || !Object.hasOwn(COMMAND_FLAGS, command)) return;
  const name = command === 'snapshot' && positionals[1] === 'diff' ? 'snapshot diff' : command === 'put' && values.array !== undefined ? 'put --array' : command;
  const taken = new Set(name === 'snapshot diff' ? [] : COMMAND_FLAGS[command].filter((flag) => name !== 'put --array' || !NEW_ARRAY_FLAGS.includes(flag)));
  for (const token of tokens) {
    if (token.kind !== 'option' || GLOBAL_FLAGS.has(token.name!) || taken.has(token.name!)) continue;
    const given = token.value === undefined ? token.rawName! : `${token.rawName} "${token.value}"`;
    const takes = taken.size > 0 ? `it takes ${[...taken].map((flag) => `--${flag}`).join(', ')} and the global flags` : 'it takes only the global flags (--address, --token, -o, --tls-*)';
    const why = name === 'put --array' ? ': it writes into the array as it is, in the lease it is in (its shape, type, placement, label and TTL are its own)' : '';
    throw new UsageError(`${name} does not take ${given}; ${takes}${why}`);
  }
}

// grpc-js names the TLS server (SNI) by the address's host, an IP address too (127.0.0.1:7070, as tensormemd
// logs it), and Node warned of that on stderr (DEP0123: a line and a hint to run node --trace-deprecation)
// at every call of --tls-ca to such an address. Only SNI is concerned: the certificate is still checked
// against the IP address (its subjectAltName), or against --tls-server-name.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === 'DEP0123') return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

/** Every byte tensormemctl prints goes through this: whole, or a StdoutWriteError. */
const writeOut = stdoutWriter(process.stdout);

async function main(): Promise<number> {
  const { values, positionals, tokens } = asUsage(() =>
    parseArgs({
      args: joinOptionValues(process.argv.slice(2), OPTIONS),
      allowPositionals: true,
      options: OPTIONS,
      tokens: true,
    }),
    Object.keys(OPTIONS),
  );
  const terminator = process.argv.indexOf('--', 2);
  if (values.version && !values.help) {
    await writeOut(`tensormemctl ${packageVersion()}\n`);
    return 0;
  }
  if (values.help) {
    await writeOut(`${HELP}\n`);
    return 0;
  }
  // No command is a usage error (exit 2): the help goes to stderr with it, as for an unknown command,
  // so that `tensormemctl $COMMAND | jq` with COMMAND unset gives jq nothing rather than the help.
  if (positionals.length === 0) {
    process.stderr.write(`tensormemctl: no command given\n${HELP}\n`);
    return 2;
  }
  if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`Expected table or json for --output but received "${values.output}"`);
  const json = values.output === 'json';
  // Connected on first use: snapshot diff and the offline doctor talk to no daemon, so a bad --address
  // (or $TENSORMEM_ADDRESS) does not stop them; a daemon command refuses it as a usage error.
  const options = process.argv.slice(2, terminator >= 0 ? terminator : undefined);
  const addressField = options.some((arg) => arg === '--address' || arg.startsWith('--address=')) || !process.env.TENSORMEM_ADDRESS ? '--address' : '--address (from TENSORMEM_ADDRESS)';
  const timeoutMs = values.timeout === undefined ? undefined : asUsage(() => parseDurationMs(values.timeout!, '--timeout'));
  if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= 0x7fff_ffff)) {
    throw new UsageError(`Expected a duration above 0 and at most 24 days for --timeout but received "${values.timeout}"`);
  }
  // snapshot, and arrays without a lease token (every array block: GetMemorySnapshot too), take the
  // reply whatever its size: the daemon's --max-message-bytes bounds it (refused past it with
  // MESSAGE_TOO_LARGE), and a daemon raised past the client's default of 64 MiB, as a snapshot of
  // some 700,000 blocks (200,000 with long labels) needs, was otherwise refused here with no flag to
  // raise. Its reply is built a slice at a time with the daemon's other calls in between: at 10^6
  // blocks that took a busy daemon 5-15 s, so they get 2 minutes, not the 10 s of the other calls.
  const snapshot = positionals[0] === 'snapshot' || positionals[0] === 'arrays';
  // put/get: each 16 MiB piece is a call of its own; 10 s for one held a transfer to 1.6 MB/s, which
  // a remote daemon over a VPN may not reach (every piece then failed DEADLINE_EXCEEDED). --timeout sets every call's.
  const transfer = positionals[0] === 'put' || positionals[0] === 'get';
  const deadlineMs = timeoutMs ?? (snapshot ? 120_000 : transfer ? 60_000 : 10_000);
  const tlsFlags = { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'], serverName: values['tls-server-name'] };
  let connection: TensormemClient | undefined;
  const client = () => {
    if (!connection) {
      const address = checkDaemonAddress(values.address!, addressField);
      const tls = tlsOptions(tlsFlags, address, (path) => readFileSync(path));
      connection = new TensormemClient(address, { deadlineMs, tls, ...(snapshot ? { maxMessageBytes: -1 } : {}) });
    }
    return connection;
  };
  const print = (data: unknown, table: () => string) => writeOut(`${json ? JSON.stringify(data, null, 2) : table()}\n`);
  // An argument a command does not take is a usage error (exit 2), never ignored: `evict A B` must not
  // evict A alone, nor `doctor 30G` judge the running daemon. doctor's flags after `--` are its own.
  const afterTerminator = positionals[0] === 'doctor' && terminator >= 0 ? process.argv.length - terminator - 1 : 0;
  const takesOnly = (operands: number, usage: string) => {
    const extra = positionals.slice(1 + operands, positionals.length - afterTerminator);
    if (extra.length > 0) throw new UsageError(`${positionals[0]} takes ${usage}, not "${extra.join(' ')}"`);
  };
  try {
    refuseFlagsNotTaken(positionals, values, tokens);
    switch (positionals[0]) {
      case 'info':
      case 'leases':
      case 'arrays':
      case 'tenants':
      case 'top':
      case 'config':
        takesOnly(0, 'no arguments');
        break;
      case 'evict':
        takesOnly(1, 'one lease id (or --tenant NAME): tensormemctl evict LEASE_ID --token ADMIN_TOKEN');
        break;
      case 'doctor':
        takesOnly(0, 'tensormemd flags only after --: tensormemctl doctor -- --maxbytes 30G');
        break;
    }
    switch (positionals[0]) {
      case 'info': {
        const info = await client().memoryInfo(values.token);
        await print(info, () =>
          [
            `backend: ${info.backend}`,
            '',
            renderTable(
              ['DEVICE', 'NAME', 'TOTAL', 'FREE', 'MAX', 'RESERVED', 'USED', 'PEAK', 'LARGEST FREE', 'BLOCKS', 'FAILED'],
              info.devices.map((d) => [d.device, d.name, formatIec(d.total_bytes), formatIec(d.free_bytes), formatIec(d.max_bytes), formatIec(d.reserved_bytes), formatIec(d.used_bytes), formatIec(d.peak_used_bytes), formatIec(d.largest_free_block_bytes), d.allocation_count, d.failed_allocations_total]),
            ),
            '',
            renderTable(
              ['HOST', 'MAX', 'USED', 'MIRRORS', 'HOST_ONLY', 'MMAP', 'MMAP MAX', 'RESERVED'],
              [
                [
                  'host',
                  formatIec(info.host!.max_bytes),
                  formatIec(info.host!.used_bytes),
                  formatIec(info.host!.mirror_bytes),
                  formatIec(info.host!.host_only_bytes),
                  formatIec(info.host!.mmap_bytes),
                  info.host!.mmap_max_bytes > 0 ? formatIec(info.host!.mmap_max_bytes) : 'none',
                  formatIec(info.host!.reserved_bytes),
                ],
              ],
            ),
            '',
            renderTable(
              ['PROCESS', 'RSS', 'COUNTED', 'MAX PHYSICAL', 'HEAP USED', 'HEAP LIMIT'],
              [['tensormemd', formatIec(info.process!.physical_bytes), formatIec(info.process!.counted_physical_bytes), capText(info.process!.max_physical_bytes), formatIec(info.process!.heap_used_bytes), formatIec(info.process!.heap_limit_bytes)]],
            ),
            '',
            renderTable(['TENANT', 'STATE', 'LEASES', 'DEVICE USED', 'HOST USED'], info.tenants.map((t) => [t.tenant, tenantState(t), t.leases, formatIec(t.device_used_bytes), formatIec(t.host_used_bytes)])),
          ].join('\n'),
        );
        break;
      }
      case 'leases': {
        // ListLeases reads an empty tenant as "every tenant": `--tenant "$UNSET"` must not list them all.
        if (values.tenant === '') throw new UsageError('leases --tenant needs a tenant name: tensormemctl leases --tenant NAME (without --tenant: every lease the token may list)');
        const leases = await client().listLeases(values.token, { tenant: values.tenant });
        await print(leases, () =>
          renderTable(
            ['LEASE', 'TENANT', 'CLIENT', 'ARRAYS', 'DEVICE', 'HOST', 'MMAP', 'AGE', 'EXPIRES'],
            leases.map((l) => [l.lease_id, l.tenant, l.client_name, l.array_count, formatIec(l.device_bytes), formatIec(l.host_bytes), formatIec(l.mmap_bytes), `${l.age_seconds}s`, new Date(Number(l.expires_at!.seconds) * 1000).toISOString()]),
          ),
        );
        break;
      }
      case 'arrays': {
        const view = await arraysView(client(), values.token);
        if (view.kind === 'lease') {
          const { arrays } = view;
          await print(arrays, () =>
            renderTable(
              ['ARRAY', 'TYPE', 'SHAPE', 'BYTES', 'PLACEMENT', 'DEVICE', 'MIRROR', 'LABEL'],
              arrays.map((a) => [a.array_id, a.data_type.replace('DATA_TYPE_', ''), `[${a.shape.join(',')}]`, a.byte_size, a.placement.replace('PLACEMENT_', ''), a.device, a.has_host_mirror ? (a.host_valid ? 'valid' : 'stale') : '-', a.label]),
            ),
          );
        } else {
          const { blocks } = view;
          await print(blocks, () =>
            renderTable(['POOL', 'LEASE', 'TENANT', 'ARRAY', 'PURPOSE', 'BYTES', 'LABEL'], blocks.map((b) => [b.pool, b.lease_id, b.tenant, b.array_id, b.purpose, formatIec(b.bytes), b.label])),
          );
        }
        break;
      }
      case 'tenants': {
        const info = await client().memoryInfo(values.token);
        const quota = (bytes: number) => (bytes > 0 ? formatIec(bytes) : '-');
        await print(info.tenants, () =>
          renderTable(
            ['TENANT', 'STATE', 'LEASES', 'MAX', 'ARRAYS', 'DEVICE USED', 'DEVICE QUOTA', 'OF QUOTA', 'GUARANTEE', 'HOST USED', 'HOST QUOTA', 'OF QUOTA', 'MMAP USED', 'MMAP QUOTA'],
            info.tenants.map((t) => [
              t.tenant,
              tenantState(t),
              t.leases,
              t.max_leases || '-',
              t.max_arrays ? `${t.arrays}/${t.max_arrays}` : String(t.arrays),
              formatIec(t.device_used_bytes),
              quota(t.quota_bytes),
              deviceQuotaShare(t, info.devices),
              quota(t.guarantee_bytes),
              formatIec(t.host_used_bytes),
              quota(t.host_quota_bytes),
              quotaShare(t.host_used_bytes, t.host_quota_bytes),
              formatIec(t.mmap_used_bytes),
              quota(t.mmap_quota_bytes),
            ]),
          ),
        );
        break;
      }
      case 'evict': {
        const leaseId = positionals[1];
        if (leaseId !== undefined && values.tenant !== undefined) throw new UsageError('evict takes a lease id or --tenant NAME, not both');
        if (values.tenant !== undefined) {
          const tenant = values.tenant;
          if (tenant === '') throw new UsageError('evict --tenant needs a tenant name: tensormemctl evict --tenant NAME --token ADMIN_TOKEN');
          const { evictedLeases, freedBytes } = await client().evictTenant(tenant, values.token);
          await print({ tenant, evicted_leases: evictedLeases, freed_bytes: freedBytes }, () => `evicted ${counted(evictedLeases, 'lease')} of tenant ${tenant}: freed ${formatIec(freedBytes)}`);
          break;
        }
        if (!leaseId) throw new UsageError('evict needs a lease id or --tenant NAME: tensormemctl evict LEASE_ID --token ADMIN_TOKEN');
        const freed = await client().evictLease(leaseId, values.token);
        await print({ lease_id: leaseId, freed_bytes: freed }, () => `evicted ${leaseId}: freed ${formatIec(freed)}`);
        break;
      }
      case 'doctor': {
        const proposed = terminator >= 0 || values.config !== undefined || values.vram !== undefined || values.ram !== undefined;
        const daemonArgs = [...(values.config ? ['--config', values.config] : []), ...(terminator >= 0 ? process.argv.slice(terminator + 1) : [])];
        const result = proposed
          ? report(proposedSubject(daemonArgs), proposedFacts(daemonArgs, { vram: values.vram, ram: values.ram }))
          : report(`daemon at ${values.address}`, await daemonFacts(client(), values.token));
        await print(result, () => renderReport(result));
        return hasErrors(result.findings) ? 1 : 0;
      }
      case 'snapshot': {
        if (positionals[1] === 'diff') {
          if (positionals.length !== 4) throw new UsageError('snapshot diff needs two files: tensormemctl snapshot diff BEFORE.json AFTER.json');
          const diff = diffSnapshots(readSnapshotFile(positionals[2]), readSnapshotFile(positionals[3]));
          await print(diff, () => renderDiff(diff));
          break;
        }
        if (positionals.length > 1) throw new UsageError(`snapshot takes -f FILE or "diff A B", not "${positionals.slice(1).join(' ')}"`);
        // A FILE that cannot be written is told before the daemon copies every block for it.
        const target = values.file ? await fileTarget(values.file, 'snapshot -f', 'snapshot without -f writes it to stdout') : undefined;
        const snapshot = await client().memorySnapshot(values.token);
        const text = `${JSON.stringify(snapshot, null, 2)}\n`;
        if (target) {
          await replaceFile(target, 'snapshot -f', async (file) => {
            try {
              await file.writeFile(text);
              await file.sync();
            } catch (error) {
              throw new Error(`snapshot -f cannot write ${target.path}: ${(error as Error).message}`);
            }
          });
          const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.filter((block) => !block.free)));
          // The blocks' bytes and the file's apart: "30000 live blocks, 29.30 MiB written to F" read as 29 MiB
          // written, of a file of 10.5 MiB.
          const held = formatIec(blocks.reduce((sum, block) => sum + block.bytes, 0));
          process.stderr.write(`snapshot: ${counted(blocks.length, 'live block')} holding ${held}, written to ${values.file} (${formatIec(Buffer.byteLength(text))})\n`);
        } else {
          await writeOut(text);
        }
        break;
      }
      case 'top': {
        const intervalMs = asUsage(() => parseDurationMs(values.interval!, '--interval'));
        // WatchMemory's interval_ms (a uint32): the daemon refuses less than 50 ms, and would read 0 as 1s.
        if (intervalMs < MIN_WATCH_INTERVAL_MS || intervalMs > 0xffff_ffff) {
          throw new UsageError(`Expected a duration of at least ${MIN_WATCH_INTERVAL_MS}ms and at most 49 days for --interval but received "${values.interval}"`);
        }
        await runTop(client(), { token: values.token, intervalMs, once: values.once!, json, output: process.stdout, input: process.stdin, writeOut, reportTimeoutMs: deadlineMs });
        break;
      }
      case 'put': {
        const file = positionals[1];
        if (!file || positionals.length > 2) throw new UsageError('put needs one file, or - for stdin: tensormemctl put FILE [--array ID] [--shape N,N --dtype float32]');
        if (values.placement !== 'device' && values.placement !== 'host-only') throw new UsageError(`Expected device or host-only for --placement but received "${values.placement}"`);
        // Given empty (`--array "$UNSET"`), each would read as not given: --array as a new array in a new
        // lease rather than the one meant, --shape as the file's size, --ttl as the daemon's --lease-ttl,
        // --tenant as the token's or the default tenant.
        const empty = (['array', 'shape', 'ttl', 'tenant'] as const).find((name) => values[name] === '');
        if (empty) throw new UsageError(`put --${empty} needs a value, and received "" (leave --${empty} out for ${{ array: 'a new array in a new lease', shape: 'the shape of the file\'s size', ttl: 'the daemon\'s --lease-ttl', tenant: 'the tenant of the --token' }[empty]})`);
        const ttlSeconds = values.ttl !== undefined ? Math.ceil(asUsage(() => parseDurationMs(values.ttl!, '--ttl')) / 1000) : undefined;
        // OpenLease reads 0 as the daemon's --lease-ttl and refuses more than 7 days (as INVALID_ARGUMENT, exit 1).
        if (ttlSeconds !== undefined && (ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS)) {
          throw new UsageError(`Expected a duration above 0 and at most ${MAX_TTL_SECONDS / 3600}h (7 days) for --ttl but received "${values.ttl}"`);
        }
        const put = file === '-' ? (options: PutOptions) => putStream(client(), stdinPieces(), options) : (options: PutOptions) => putFile(client(), file, options);
        const result = await interruptible((signal) =>
          put({
            arrayId: values.array,
            token: values.token,
            tenant: values.tenant,
            shape: values.shape,
            dtype: values.dtype,
            placement: values.placement === 'device' ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY',
            label: values.label,
            ttlSeconds,
            progress: process.stderr.isTTY ? process.stderr : undefined,
            signal,
          }),
        );
        await print(result, () =>
          [
            `wrote ${result.bytes_written} bytes (${formatIec(result.bytes_written)}) into array ${result.array.array_id} ([${result.array.shape.join(',')}] ${result.array.data_type.replace('DATA_TYPE_', '').toLowerCase()})`,
            ...(result.lease
              ? [
                  result.lease.renew_error
                    ? `lease ${result.lease.lease_id} holds it until ${result.lease.expires_at} unless renewed (renewing it for ${result.lease.ttl_seconds}s once written failed: ${result.lease.renew_error}); its token: ${result.lease.token}`
                    : `lease ${result.lease.lease_id} holds it for ${result.lease.ttl_seconds}s unless renewed; its token: ${result.lease.token}`,
                  `TENSORMEM_TOKEN=${result.lease.token} ${['tensormemctl', ...connectionFlags(values.address!, tlsFlags), 'get', '--array', result.array.array_id, 'FILE'].join(' ')}`,
                ]
              : []),
          ].join('\n'),
        );
        break;
      }
      case 'get': {
        const file = positionals[1];
        if (!file || positionals.length > 2 || !values.array) throw new UsageError('get needs an array and one file: tensormemctl get --array ID FILE');
        const array = values.array;
        const transferOptions = { token: values.token, progress: process.stderr.isTTY ? process.stderr : undefined };
        if (file === '-') {
          // "-" is stdout, as to most tools (it used to make a file named "-"): stdout carries the bytes
          // alone, so what get says when done goes to stderr.
          const result = await interruptible((signal) => getToStream(client(), array, writeOut, { ...transferOptions, signal }));
          const summary = { array: result.array, bytes_read: result.bytes_read, file: '-' };
          process.stderr.write(`${json ? JSON.stringify(summary, null, 2) : `read ${result.bytes_read} bytes (${formatIec(result.bytes_read)}) of array ${array} to stdout`}\n`);
          break;
        }
        const result = await interruptible((signal) => getFile(client(), array, file, { ...transferOptions, signal }));
        await print({ array: result.array, bytes_read: result.bytes_read, file }, () => `read ${result.bytes_read} bytes (${formatIec(result.bytes_read)}) of array ${values.array} into ${file}`);
        break;
      }
      case 'config': {
        const config = await client().config(values.token);
        await print(config, () => [`tensormemd ${config.version}, backend ${config.backend}`, '', renderTable(['NAME', 'VALUE', 'SOURCE', 'SEED NAME'], config.values.map((v) => [v.name, v.value, v.source, v.seed_name]), { 1: CONFIG_VALUE_WIDTH })].join('\n'));
        break;
      }
      default:
        process.stderr.write(`tensormemctl: unknown command "${positionals[0]}"\n${HELP}\n`);
        return 2;
    }
    return 0;
  } catch (error) {
    if (connection) {
      const connected = connection.leases.getChannel().getConnectivityState(false) === connectivityState.READY;
      const message = connectErrorMessage(error, { address: connection.address, tlsCa: values['tls-ca'], deadlineMs, connected });
      if (message !== undefined) throw new Error(message);
    }
    throw error;
  } finally {
    connection?.close();
  }
}

// exitCode rather than exit(): output to a pipe is written asynchronously and must not be cut short.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    // The reader of stdout went away (`tensormemctl leases | head`): what it wanted it has, as when SIGPIPE ends a process.
    if (error instanceof StdoutWriteError && error.closed) {
      process.exitCode = STDOUT_CLOSED_EXIT_CODE;
      return;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`tensormemctl: ${error.message}\nRun tensormemctl --help for the commands and flags.\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`tensormemctl: ${(error as Error).message}\n`);
    process.exitCode = error instanceof InterruptedError ? error.exitCode : 1;
  },
);
