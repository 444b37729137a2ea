import { getHeapStatistics } from 'node:v8';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { helpText, FLAGS } from '../../src/config/flags';
import { parseDurationMs, parseSize, resolveSize } from '../../src/config/sizes';
import { TensormemError } from '../../src/errors';
import { resolveLimits } from '../../src/memory/limits';
import { startDaemon } from '../../src/daemon';
import pino from 'pino';
import type { DeviceMemoryInfo } from '../../src/native/backend';

const GiB = 1024 ** 3;

describe('sizes', () => {
  it.each([
    ['8G', 8 * GiB],
    ['8g', 8 * GiB],
    ['8GB', 8 * GiB],
    ['8GiB', 8 * GiB],
    ['512M', 512 * 1024 ** 2],
    ['512MiB', 512 * 1024 ** 2],
    ['64K', 65536],
    ['2T', 2 * 1024 ** 4],
    ['1.5G', 1.5 * GiB],
    ['1048576', 1048576],
    ['0', 0],
  ])('parses %s as powers of 1024', (text, bytes) => {
    expect(parseSize(text, '--maxbytes')).toEqual({ kind: 'bytes', bytes });
  });

  it('keeps a percentage for later resolution against RAM or VRAM', () => {
    const spec = parseSize('80%', '--maxbytes');
    expect(spec).toEqual({ kind: 'percent', percent: 80 });
    expect(resolveSize(spec, 10 * GiB)).toBe(8 * GiB);
  });

  it.each(['12Q', '-1G', 'G', '', '8 G B', '1e9', '150%'])('refuses %j naming the flag', (text) => {
    expect(() => parseSize(text, '--host-maxbytes')).toThrowError(/for --host-maxbytes but received/);
  });

  it('takes a percentage for the caps the README names, and for no other size flag', () => {
    const withPercent = FLAGS.filter((flag) => flag.type === 'size' && (() => {
      try {
        loadConfig([`--${flag.name}`, '10%'], {});
        return true;
      } catch (error) {
        expect((error as Error).message).toContain(`for --${flag.name} but received "10%"`);
        return false;
      }
    })()).map((flag) => flag.name);
    expect(withPercent.sort()).toEqual(['device-reserve', 'emulated-device', 'host-maxbytes', 'maxbytes', 'maxphysicalbytes']);
  });

  // 0 turns --maxphysicalbytes, --mmap-maxbytes, --heap-reserve and a tenant's quota off: a size that is not
  // 0 but floors to 0 bytes ("0.5", meant as 0.5G) would take the cap away without a word.
  it.each([
    ['--maxphysicalbytes', '0.5'],
    ['--mmap-maxbytes', '0.9B'],
    ['--heap-reserve', '0.0001K'],
  ])('refuses %s %j, under one byte but not 0 (it would mean no cap)', (flag, text) => {
    expect(() => loadConfig([flag, text], {})).toThrowError(`Expected 0 or a size of at least 1 byte for ${flag} but received "${text}"`);
  });

  it('still takes 0 written as a fraction (0.0) as 0', () => {
    expect(parseSize('0.0', '--maxphysicalbytes')).toEqual({ kind: 'bytes', bytes: 0 });
  });

  it('refuses a percentage where none is meaningful', () => {
    expect(() => parseSize('10%', '--chunk-bytes', false)).toThrowError('Expected a size like 8G, 512MiB or 1048576 for --chunk-bytes but received "10%"');
  });

  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2', 2000],
    ['0.5s', 500],
  ])('parses duration %s', (text, ms) => {
    expect(parseDurationMs(text, '--lease-ttl')).toBe(ms);
  });

  it.each(['30x', 's', '-1s', '1 d'])('refuses duration %j', (text) => {
    expect(() => parseDurationMs(text, '--lease-ttl')).toThrowError(/for --lease-ttl but received/);
  });
});

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const config = loadConfig([], {});
    expect(config.backend).toBe('auto');
    expect(config.mirror).toBe('lazy');
    expect(config.leaseTtlMs).toBe(30_000);
    expect(config.reclaimIntervalMs).toBe(1000);
    expect(config.maxBytes).toBeUndefined();
    expect(config.hostMaxBytes).toEqual({ kind: 'percent', percent: 25 });
    expect(config.listen).toEqual(['127.0.0.1:7070', 'unix:/tmp/tensormemd.sock']);
    expect(config.dataListen).toBe('127.0.0.1:7071');
    expect(config.metricsListen).toBe('127.0.0.1:7072');
    expect(config.sources.backend).toBe('default');
    expect(config.sources['data-listen']).toBe('default');
  });

  it('turns the data plane, the metrics and the health listener off with `off`, from a flag, the environment or a config file', () => {
    expect(loadConfig(['--data-listen', 'off'], {}).dataListen).toBeUndefined();
    expect(loadConfig(['--metrics-listen', 'off'], {}).metricsListen).toBeUndefined();
    expect(loadConfig(['--health-listen', 'off'], {}).healthListen).toBeUndefined();
    expect(loadConfig([], { TENSORMEM_HEALTH_LISTEN: 'off' }).healthListen).toBeUndefined();
    expect(loadConfig([], { TENSORMEM_DATA_LISTEN: 'off' }).dataListen).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'off.yaml');
    writeFileSync(file, 'data-listen: "off"\nmetrics-listen: "off"\n');
    const config = loadConfig(['--config', file], {});
    expect(config.dataListen).toBeUndefined();
    expect(config.metricsListen).toBeUndefined();
    // A later flag wins, so `--data-listen off` can be overridden by the flags that follow it.
    expect(loadConfig(['--data-listen', 'off', '--data-listen', 'unix:/tmp/data.sock'], {}).dataListen).toBe('unix:/tmp/data.sock');
    expect(() => loadConfig(['--data-listen', 'nowhere'], {})).toThrowError('Expected HOST:PORT (port 0 picks one), unix:PATH or off for --data-listen but received "nowhere"');
  });

  it('takes flags over environment over config file over defaults, remembering each source', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'tensormemd.yaml');
    writeFileSync(file, 'maxbytes: 4G\nhost-maxbytes: 2G\nmirror: eager\nlisten:\n  - 127.0.0.1:9000\n');
    const config = loadConfig(['--config', file, '--maxbytes', '6G'], { TENSORMEM_HOST_MAXBYTES: '3G' });
    expect(config.maxBytes).toEqual({ kind: 'bytes', bytes: 6 * GiB });
    expect(config.sources.maxbytes).toBe('flag');
    expect(config.hostMaxBytes).toEqual({ kind: 'bytes', bytes: 3 * GiB });
    expect(config.sources['host-maxbytes']).toBe('env');
    expect(config.mirror).toBe('eager');
    expect(config.sources.mirror).toBe('file');
    expect(config.listen).toEqual(['127.0.0.1:9000']);
    expect(config.sources['lease-ttl']).toBe('default');
  });

  it('reads JSON config files by extension', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'tensormemd.json');
    writeFileSync(file, JSON.stringify({ 'lease-ttl': '2m', backend: 'host' }));
    const config = loadConfig(['--config', file], {});
    expect(config.leaseTtlMs).toBe(120_000);
    expect(config.backend).toBe('host');
  });

  it('bounds V8 heap growth to 10 % unless told otherwise (0 = V8 decides)', () => {
    expect(loadConfig([], {}).heapGrowthPercent).toBe(10);
    expect(loadConfig(['--heap-growth', '0'], {}).heapGrowthPercent).toBe(0);
    expect(loadConfig([], {}).dataMaxConnections).toBe(1024);
    expect(loadConfig(['--data-max-connections', '0'], {}).dataMaxConnections).toBe(0);
    expect(loadConfig(['--max-connections', '0'], {}).maxConnections).toBe(0);
    expect(loadConfig(['--max-connections', '64'], {}).maxConnections).toBe(64);
    expect(loadConfig([], {}).maxConcurrentStreams).toBe(1000);
    expect(loadConfig(['--max-concurrent-streams', '0'], {}).maxConcurrentStreams).toBe(0);
    expect(loadConfig([], {}).maxTenantStreams).toBe(1000);
    expect(loadConfig(['--max-tenant-streams', '0'], {}).maxTenantStreams).toBe(0);
    expect(loadConfig([], {}).maxTenantWaits).toBe(1000);
    expect(loadConfig([], { TENSORMEM_MAX_TENANT_WAITS: '0' }).maxTenantWaits).toBe(0);
    expect(loadConfig([], { TENSORMEM_HEAP_GROWTH: '50' }).heapGrowthPercent).toBe(50);
  });

  it('--pool-idle-release: 60 s by default, off, or a duration one timer can arm', () => {
    expect(loadConfig([], {}).poolIdleReleaseMs).toBe(60_000);
    expect(loadConfig(['--pool-idle-release', 'off'], {}).poolIdleReleaseMs).toBe(0);
    expect(loadConfig([], { TENSORMEM_POOL_IDLE_RELEASE: '5m' }).poolIdleReleaseMs).toBe(300_000);
    expect(() => loadConfig(['--pool-idle-release', '0'], {})).toThrowError('for --pool-idle-release but received "0"');
    expect(() => loadConfig(['--pool-idle-release', 'soon'], {})).toThrowError('--pool-idle-release');
    expect(() => loadConfig(['--pool-idle-release', '30d'], {})).toThrowError('for --pool-idle-release but received "30d"');
  });

  it('--keepalive-time: off, or under the 2^31 - 1 ms that grpc-js takes for no pings', () => {
    expect(loadConfig(['--keepalive-time', 'off'], {}).keepaliveTimeMs).toBe(0);
    expect(loadConfig(['--keepalive-time', '2147483646ms'], {}).keepaliveTimeMs).toBe(2147483646);
    expect(() => loadConfig(['--keepalive-time', '2147483647ms'], {})).toThrowError('for --keepalive-time but received "2147483647ms"');
  });

  it('--max-partial-message-bytes: 256M or twice --max-message-bytes unset (derived), 0 or at least one whole message given', () => {
    expect(loadConfig([], {}).maxPartialMessageBytes).toBe(256 * 1024 * 1024);
    const big = loadConfig(['--max-message-bytes', '200M'], {});
    expect(big.maxPartialMessageBytes).toBe(400 * 1024 * 1024);
    expect(big.rawValues['max-partial-message-bytes']).toBe(String(400 * 1024 * 1024));
    expect(loadConfig(['--max-partial-message-bytes', '0'], {}).maxPartialMessageBytes).toBe(0);
    expect(loadConfig(['--max-partial-message-bytes', '64M'], {}).maxPartialMessageBytes).toBe(64 * 1024 * 1024);
    expect(() => loadConfig(['--max-partial-message-bytes', '1M'], {})).toThrowError(
      'Expected 0 (no budget) or a size of at least --max-message-bytes (67108864 bytes): a message of that size must be able to arrive for --max-partial-message-bytes but received "1M (1048576 bytes)"',
    );
  });

  it('keeps --chunk-bytes plus 1 KiB of ReadArray framing within --max-message-bytes', () => {
    // A ReadArray message is one chunk plus ~11 bytes of framing: at chunk >= max message every read failed.
    expect(() => loadConfig(['--chunk-bytes', '64M'], {})).toThrowError(
      'Expected a size of at most 67107840 bytes (--max-message-bytes 67108864 less 1024 bytes of ReadArray message framing: chunk-bytes + 1024 <= max-message-bytes) for --chunk-bytes but received "64M (67108864 bytes)"',
    );
    expect(() => loadConfig(['--chunk-bytes', '1M', '--max-message-bytes', '512K'], {})).toThrowError('for --chunk-bytes but received "1M (1048576 bytes)"');
    expect(() => loadConfig(['--max-message-bytes', '2M'], { TENSORMEM_CHUNK_BYTES: '2M' })).toThrowError('Expected a size of at most 2096128 bytes');
    expect(() => loadConfig(['--max-message-bytes', '1K'], {})).toThrowError('Expected a size above 1024 bytes (room for a ReadArray chunk and its framing) for --max-message-bytes but received "1K"');
    expect(loadConfig(['--chunk-bytes', '1047552', '--max-message-bytes', '1M'], {}).chunkBytes).toBe(1047552);
    // gRPC frames a message with a 4-byte length; and a --chunk-bytes of 4 GiB or more is no one Buffer (ReadArray and GET failed INTERNAL).
    expect(() => loadConfig(['--max-message-bytes', '8G', '--chunk-bytes', '5G'], {})).toThrowError(
      'Expected a size of at most 4294967295 bytes (gRPC frames a message with a 4-byte length) for --max-message-bytes but received "8G (8589934592 bytes)"',
    );
    expect(() => loadConfig(['--max-message-bytes', '4G'], {})).toThrowError('for --max-message-bytes but received "4G (4294967296 bytes)"');
    expect(loadConfig(['--max-message-bytes', '4294967295', '--chunk-bytes', '4294966271'], {})).toMatchObject({ maxMessageBytes: 2 ** 32 - 1, chunkBytes: 2 ** 32 - 1025 });
    expect(loadConfig([], {})).toMatchObject({ chunkBytes: 1024 * 1024, maxMessageBytes: 64 * 1024 * 1024 });
    // Only --max-message-bytes given: the default chunk (1M) shrinks to fit, and GetConfig says so.
    const fitted = loadConfig([], { TENSORMEM_MAX_MESSAGE_BYTES: '1M' });
    expect(fitted).toMatchObject({ chunkBytes: 1047552, maxMessageBytes: 1024 * 1024 });
    expect(fitted.rawValues['chunk-bytes']).toBe('1047552');
    expect(fitted.sources['chunk-bytes']).toBe('default');
  });

  it('refuses a flag whose value is missing rather than taking the next flag as its value', () => {
    expect(() => loadConfig(['--mmap-dir', '--allow-small-device'], {})).toThrowError(
      'Expected a value (DIR; --mmap-dir=VALUE for one that starts with --) for --mmap-dir but received "--allow-small-device"',
    );
    expect(() => loadConfig(['--cudnn-library', '--log-level', 'debug'], {})).toThrowError('for --cudnn-library but received "--log-level"');
    expect(() => loadConfig(['--maxbytes'], {})).toThrowError('Expected a value (SIZE) for --maxbytes but received "(nothing)"');
    // With = the value may start with --; a bool flag takes no separate value.
    const config = loadConfig(['--mmap-dir=--odd', '--allow-small-device', '--listen', '127.0.0.1:0'], {});
    expect([config.mmapDir, config.allowSmallDevice, config.listen]).toEqual(['--odd', true, ['127.0.0.1:0']]);
  });

  it('collects repeated --listen flags', () => {
    expect(loadConfig(['--listen', '127.0.0.1:1', '--listen=unix:/tmp/x.sock'], {}).listen).toEqual(['127.0.0.1:1', 'unix:/tmp/x.sock']);
  });

  it('says a comma list on the command line is one --listen per address; --help writes the default as its items, not as such a list', () => {
    expect(loadConfig([], { TENSORMEM_LISTEN: '127.0.0.1:1,unix:/tmp/x.sock' }).listen).toEqual(['127.0.0.1:1', 'unix:/tmp/x.sock']);
    expect(() => loadConfig(['--listen', '127.0.0.1:1,unix:/tmp/x.sock'], {})).toThrowError(
      'Expected HOST:PORT (port 0 picks one) or unix:PATH, one address per --listen (repeat the flag for more) for --listen but received "127.0.0.1:1,unix:/tmp/x.sock"',
    );
    // --help showed "(default 127.0.0.1:7070,unix:/tmp/tensormemd.sock; …)", a value --listen refuses.
    expect(helpText()).toContain('(default 127.0.0.1:7070 and unix:/tmp/tensormemd.sock; env TENSORMEM_LISTEN)');
  });

  it('refuses an address two listeners would share, naming the flags, before anything listens', () => {
    // The same --listen twice was served as if two listeners (grpc-js bound it once); a unix socket shared
    // with --data-listen was refused only after the first was up, as "another process is serving there".
    expect(() => loadConfig(['--listen', '127.0.0.1:17201', '--listen', '127.0.0.1:17201'], {})).toThrowError(
      'Expected an address no other listener has (each listener binds its own) for --listen but received "127.0.0.1:17201", given to --listen already',
    );
    expect(() => loadConfig(['--listen', 'unix:/tmp/t.sock', '--data-listen', 'unix:/tmp/t.sock'], {})).toThrowError(
      'for --data-listen but received "unix:/tmp/t.sock", already the address of --listen',
    );
    expect(() => loadConfig(['--data-listen', '127.0.0.1:7072'], {})).toThrowError('for --metrics-listen but received "127.0.0.1:7072", already the address of --data-listen');
    expect(() => loadConfig(['--health-listen', 'LOCALHOST:7070', '--listen', 'localhost:7070'], {})).toThrowError('for --health-listen but received "LOCALHOST:7070", already the address of --listen');
    expect(() => loadConfig(['--listen', '127.0.0.1:1'], { TENSORMEM_DATA_LISTEN: '127.0.0.1:1' })).toThrowError('for --data-listen (from TENSORMEM_DATA_LISTEN) but received "127.0.0.1:1"');
    // Port 0 picks a port for each; the defaults are three addresses.
    expect(loadConfig(['--listen', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'], {}).listen).toEqual(['127.0.0.1:0', '127.0.0.1:0']);
    expect(loadConfig([], {}).dataListen).toBe('127.0.0.1:7071');
  });

  it.each([
    [['--backend', 'tpu'], 'Expected one of auto, cuda, host for --backend but received "tpu"'],
    [['--mirror', 'sometimes'], 'Expected one of lazy, eager for --mirror but received "sometimes"'],
    [['--lease-ttl', '0s'], 'Expected a duration above 0 for --lease-ttl but received "0s"'],
    [['--lease-ttl', '169h'], 'Expected a duration of at most 168h (7 days, the longest TTL OpenLease takes) for --lease-ttl but received "169h"'],
    [['--lease-ttl', '2000000h'], 'Expected a duration of at most 168h (7 days, the longest TTL OpenLease takes) for --lease-ttl but received "2000000h"'],
    [['--shutdown-timeout', '600h'], 'Expected a duration of at most 2147483647 ms (about 24.8 days) for --shutdown-timeout but received "600h"'],
    [['--reclaim-interval', '700h'], 'Expected a duration of at most 2147483647 ms (about 24.8 days) for --reclaim-interval but received "700h"'],
    [['--data-stall-timeout', '9999h'], 'Expected a duration of at most 2147483647 ms (about 24.8 days) for --data-stall-timeout but received "9999h"'],
    [['--frobnicate'], 'Expected a known flag (see --help) for arguments but received "--frobnicate"'],
    [['30G'], 'Expected a flag starting with -- (see --help) for arguments but received "30G"'],
    // A switch given a value as other flags take one: refused as a stray argument, which did not say why.
    [['--allow-small-device', 'yes'], 'Expected no value (a switch: --allow-small-device alone, or --allow-small-device=false) for --allow-small-device but received "yes"'],
    [['--maxbytes'], 'Expected a value (SIZE) for --maxbytes'],
    [['--emulated-devices', '0'], 'Expected an integer from 1 to 16 for --emulated-devices but received "0"'],
    [['--chunk-bytes', '0'], 'Expected a size above 0 for --chunk-bytes but received "0"'],
    [['--heap-growth', '-5'], 'Expected an integer from 0 to 400 for --heap-growth but received "-5"'],
    [['--heap-growth', '10%'], 'Expected an integer from 0 to 400 for --heap-growth but received "10%"'],
    [['--data-max-connections', '-1'], 'Expected an integer from 0 to 1000000 for --data-max-connections but received "-1"'],
    [['--data-max-connections', 'many'], 'Expected an integer from 0 to 1000000 for --data-max-connections but received "many"'],
    [['--max-connections', '-1'], 'Expected an integer from 0 to 1000000 for --max-connections but received "-1"'],
    [['--max-concurrent-streams', '4294967296'], 'Expected an integer from 0 to 4294967295 for --max-concurrent-streams but received "4294967296"'],
    [['--max-tenant-streams', '-1'], 'Expected an integer from 0 to 2147483647 for --max-tenant-streams but received "-1"'],
    [['--max-tenant-waits', 'some'], 'Expected an integer from 0 to 2147483647 for --max-tenant-waits but received "some"'],
    [['--listen', '127.0.0.1'], 'Expected HOST:PORT (port 0 picks one) or unix:PATH for --listen but received "127.0.0.1"'],
    [['--listen', '127.0.0.1:0', '--listen', '127.0.0.1:70000'], 'Expected HOST:PORT (port 0 picks one) or unix:PATH for --listen but received "127.0.0.1:70000"'],
    [['--listen', 'unix:'], 'Expected unix:PATH with a path for --listen but received "unix:"'],
  ])('refuses %j with a message naming the flag', (argv, message) => {
    let error: unknown;
    try {
      loadConfig(argv, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TensormemError);
    expect((error as Error).message).toContain(message);
  });

  it('names the environment variable source of a bad value', () => {
    expect(() => loadConfig([], { TENSORMEM_MAXBYTES: 'lots' })).toThrowError('Expected a size like 8G, 512MiB, 1048576 or 80% for --maxbytes (from TENSORMEM_MAXBYTES) but received "lots"');
    expect(() => loadConfig([], { TENSORMEM_LEASE_TTL: '0s' })).toThrowError('Expected a duration above 0 for --lease-ttl (from TENSORMEM_LEASE_TTL) but received "0s"');
    expect(() => loadConfig([], { TENSORMEM_LEASE_TTL: '9999999999999h' })).toThrowError('for --lease-ttl (from TENSORMEM_LEASE_TTL) but received "9999999999999h"');
    expect(loadConfig(['--lease-ttl', '168h'], {}).leaseTtlMs).toBe(7 * 24 * 3600 * 1000);
    expect(() => loadConfig([], { TENSORMEM_MIRROR: 'sometimes' })).toThrowError('Expected one of lazy, eager for --mirror (from TENSORMEM_MIRROR) but received "sometimes"');
    expect(() => loadConfig([], { TENSORMEM_METRICS_LISTEN: 'nowhere' })).toThrowError('for --metrics-listen (from TENSORMEM_METRICS_LISTEN) but received "nowhere"');
    expect(() => loadConfig([], { TENSORMEM_LISTEN: 'unix:/tmp/t.sock,127.0.0.1' })).toThrowError('Expected HOST:PORT (port 0 picks one) or unix:PATH for --listen (from TENSORMEM_LISTEN) but received "127.0.0.1"');
    expect(() => loadConfig([], { TENSORMEM_CONFIG: '/nonexistent/tensormemd.yaml' })).toThrowError('Expected a readable file for --config (from TENSORMEM_CONFIG) but received');
    // A flag is named as itself, and overrides a bad variable.
    expect(() => loadConfig(['--maxbytes', 'lots'], {})).toThrowError('for --maxbytes but received "lots"');
    expect(loadConfig(['--maxbytes', '1G'], { TENSORMEM_MAXBYTES: 'lots' }).maxBytes).toEqual({ kind: 'bytes', bytes: GiB });
  });

  it('names the config file and key a bad value came from', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'maxbytes: 12Q\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected a size like 8G, 512MiB, 1048576 or 80% for --maxbytes (from ${file}: maxbytes) but received "12Q"`);
    writeFileSync(file, 'emulated-devices: 0\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected an integer from 1 to 16 for --emulated-devices (from ${file}: emulated-devices) but received "0"`);
    writeFileSync(file, 'listen: [ "127.0.0.1:7070x" ]\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected HOST:PORT (port 0 picks one) or unix:PATH for --listen (from ${file}: listen) but received "127.0.0.1:7070x"`);
    writeFileSync(file, 'data-listen: "unix:"\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected unix:PATH with a path for --data-listen (from ${file}: data-listen) but received "unix:"`);
    // The environment overrides the file, and is the one named.
    writeFileSync(file, 'maxbytes: 4G\n');
    expect(() => loadConfig(['--config', file], { TENSORMEM_MAXBYTES: '12Q' })).toThrowError('for --maxbytes (from TENSORMEM_MAXBYTES) but received "12Q"');
  });

  it('splits a list flag given as a string in the config file on commas, as its environment variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const yaml = join(dir, 'list.yaml');
    writeFileSync(yaml, 'listen: "127.0.0.1:0, unix:/tmp/tensormem-list.sock"\n');
    const fromFile = loadConfig(['--config', yaml], {});
    expect(fromFile.listen).toEqual(['127.0.0.1:0', 'unix:/tmp/tensormem-list.sock']);
    expect(fromFile.sources.listen).toBe('file');
    expect(loadConfig([], { TENSORMEM_LISTEN: '127.0.0.1:0,unix:/tmp/tensormem-list.sock' }).listen).toEqual(fromFile.listen);
    const json = join(dir, 'list.json');
    writeFileSync(json, JSON.stringify({ listen: '127.0.0.1:1,127.0.0.1:2' }));
    expect(loadConfig(['--config', json], {}).listen).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    // A YAML list is taken as it is.
    writeFileSync(yaml, 'listen:\n  - 127.0.0.1:3\n  - unix:/tmp/tensormem-list.sock\n');
    expect(loadConfig(['--config', yaml], {}).listen).toEqual(['127.0.0.1:3', 'unix:/tmp/tensormem-list.sock']);
    writeFileSync(yaml, 'listen: " , "\n');
    expect(() => loadConfig(['--config', yaml], {})).toThrowError(`Expected at least one address (HOST:PORT or unix:PATH) for --listen (from ${yaml}: listen) but received "(none)"`);
  });

  it('refuses a config file value that is empty (YAML null), a mapping, or a list for a one-value flag, naming file and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'types.yaml');
    // Read as text these were "null" (an MMAP folder ./null, a cuDNN library "null"), "[object Object]", and "/a,/b".
    writeFileSync(file, 'mmap-dir:\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected a value (DIR) for --mmap-dir (from ${file}: mmap-dir) but received an empty value (leave the key out for the default)`);
    writeFileSync(file, 'cudnn-library: ~\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`for --cudnn-library (from ${file}: cudnn-library) but received an empty value`);
    writeFileSync(file, 'maxbytes: { device: 4G }\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected a value (SIZE) for --maxbytes (from ${file}: maxbytes) but received {"device":"4G"}`);
    writeFileSync(file, 'mmap-dir: [/a, /b]\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected one value (DIR), not a list for --mmap-dir (from ${file}: mmap-dir) but received ["/a","/b"]`);
    writeFileSync(file, 'maxbytes: [4G]\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected one value (SIZE), not a list for --maxbytes (from ${file}: maxbytes)`);
    writeFileSync(file, 'listen: [127.0.0.1:0, { port: 1 }]\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected a list of addresses (strings) for --listen (from ${file}: listen)`);
    writeFileSync(file, 'listen:\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`for --listen (from ${file}: listen) but received an empty value`);
    const json = join(dir, 'types.json');
    writeFileSync(json, JSON.stringify({ tenants: null }));
    expect(() => loadConfig(['--config', json], {})).toThrowError(`Expected a value (FILE) for --tenants (from ${json}: tenants) but received an empty value`);
    // Scalars of every YAML/JSON type are still read as their text.
    writeFileSync(file, 'lease-ttl: 90\nallow-small-device: true\nmaxbytes: 4G\nlisten: [127.0.0.1:0]\nmmap-dir: ""\n');
    const config = loadConfig(['--config', file], {});
    expect([config.leaseTtlMs, config.allowSmallDevice, config.maxBytes, config.listen, config.mmapDir]).toEqual([90_000, true, { kind: 'bytes', bytes: 4 * GiB }, ['127.0.0.1:0'], undefined]);
  });

  it('refuses a flag name the config file gives twice, naming the key, both values and their lines (JSON kept the last without a word)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const json = join(dir, 'twice.json');
    writeFileSync(json, '{\n  "maxbytes": "1G",\n  "lease-ttl": "2m",\n  "maxbytes": "3G"\n}\n');
    expect(() => loadConfig(['--config', json], {})).toThrowError(
      `Expected each flag name once (a second would replace the first without a word) for ${json}: maxbytes but received it twice: "1G" at line 2 and "3G" at line 4`,
    );
    const yaml = join(dir, 'twice.yaml');
    writeFileSync(yaml, 'maxbytes: 1G\nmirror: eager\nmaxbytes: 3G\n');
    expect(() => loadConfig(['--config', yaml], {})).toThrowError(`for ${yaml}: maxbytes but received it twice: "1G" at line 1 and "3G" at line 3`);
    // Each key once is read as before, and a key repeated inside a list item is no flag name.
    writeFileSync(json, JSON.stringify({ maxbytes: '1G', listen: ['127.0.0.1:0', '127.0.0.1:1'] }));
    expect(loadConfig(['--config', json], {}).maxBytes).toEqual({ kind: 'bytes', bytes: GiB });
  });

  it('refuses a .json config file that is not JSON naming its line and column, as the tenants file does', () => {
    const json = join(mkdtempSync(join(tmpdir(), 'tensormem-config-')), 'comma.json');
    writeFileSync(json, '{\n  "maxbytes": "1G",\n  "lease-ttl": "2m",\n}\n');
    expect(() => loadConfig(['--config', json], {})).toThrowError(`Expected valid YAML or JSON for --config but received "${json}:4:1: Expected double-quoted property name"`);
  });

  it('refuses unknown keys in the config file, naming file and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'maxbites: 4G\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`${file}: maxbites`);
  });

  it('names the flag an unknown config key or command-line flag looks like (max_bytes, lease_ttl, --max-bytes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'near.yaml');
    writeFileSync(file, 'lease_ttl: 10s\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`for ${file}: lease_ttl but received "lease_ttl" (did you mean lease-ttl?)`);
    writeFileSync(file, 'maxbites: 4G\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`for ${file}: maxbites but received "maxbites" (did you mean maxbytes?)`);
    expect(() => loadConfig(['--max-bytes', '4G'], {})).toThrowError('Expected a known flag (see --help) for arguments but received "--max-bytes" (did you mean --maxbytes?)');
  });

  it('refuses a config key, which is a flag name, saying why rather than calling it unknown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'nested.yaml');
    writeFileSync(file, 'config: /etc/other.yaml\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(
      `Expected a flag name other than config (a config file cannot name another: give it with --config or TENSORMEM_CONFIG) for ${file}: config but received "config"`,
    );
  });
});

describe('open mode: addresses beyond loopback refused at start', () => {
  const refusal = (argv: string[], env: NodeJS.ProcessEnv) => startDaemon(loadConfig(argv, env), pino({ level: 'silent' })).then(() => 'started', (error: Error) => error.message);

  it('names the variable or config file key an exposed address came from', async () => {
    expect(await refusal([], { TENSORMEM_LISTEN: 'unix:/tmp/t.sock,0.0.0.0:7070' })).toBe(
      'Expected loopback or unix: addresses only when no --tenants file is given (open mode) for --listen (from TENSORMEM_LISTEN) but received "0.0.0.0:7070"',
    );
    expect(await refusal(['--listen', '0.0.0.0:7070'], {})).toContain('for --listen but received "0.0.0.0:7070"');
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-config-')), 'exposed.yaml');
    writeFileSync(file, 'metrics-listen: 0.0.0.0:7072\n');
    expect(await refusal(['--config', file, '--listen', 'unix:/tmp/t.sock'], {})).toContain(`for --metrics-listen (from ${file}: metrics-listen) but received "0.0.0.0:7072"`);
    expect(await refusal(['--listen', 'unix:/tmp/t.sock', '--metrics-listen', 'off'], { TENSORMEM_DATA_LISTEN: '0.0.0.0:7071' })).toContain('for --data-listen (from TENSORMEM_DATA_LISTEN) but received "0.0.0.0:7071"');
  });
});

describe('a --tenants file refused at start', () => {
  const refusal = (argv: string[], env: NodeJS.ProcessEnv) => startDaemon(loadConfig(argv, env), pino({ level: 'silent' })).then(() => 'started', (error: Error) => error.message);
  const base = ['--backend', 'host', '--emulated-device', '256M', '--allow-small-device', '--maxbytes', '192M', '--listen', 'unix:/tmp/t.sock', '--metrics-listen', 'off', '--data-listen', 'off'];

  // "tensormemd: /etc/tensormem/tenants.yaml: cannot read: ENOENT …" named the path but not the flag (or variable) it came from.
  it('names the flag, or the variable or config file key, the file came from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const missing = join(dir, 'missing.yaml');
    expect(await refusal([...base, '--tenants', missing], {})).toMatch(new RegExp(`^--tenants ${missing}: cannot read: ENOENT`));
    expect(await refusal(base, { TENSORMEM_TENANTS: missing })).toMatch(new RegExp(`^--tenants \\(from TENSORMEM_TENANTS\\) ${missing}: cannot read: ENOENT`));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'maxbytes: 12Q\n', { mode: 0o600 });
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `tenants: ${bad}\n`);
    expect(await refusal([...base, '--config', config], {})).toBe(`--tenants (from ${config}: tenants) ${bad}:1: expected "tenants:" followed by a list of tenants`);
  });
});

describe('security files given empty', () => {
  // An empty value (a config file's "", a flag whose variable was unset: --tls-client-ca "$CA") would
  // otherwise read as "none": TLS without client certificates, plaintext, or open mode, with no word.
  it.each(['tls-client-ca', 'tls-cert', 'tls-key', 'tenants'])('refuses an empty --%s as a flag or in the config file, naming where it came from', (name) => {
    const pem = ['--tls-cert', '/etc/server.pem', '--tls-key', '/etc/server.key'];
    expect(() => loadConfig([...pem, `--${name}`, ''], {})).toThrowError(`Expected a file path (leave --${name} out for none) for --${name} but received ""`);
    expect(() => loadConfig([...pem, `--${name}=  `], {})).toThrowError(`for --${name} but received "  "`);
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-config-')), 'empty.json');
    writeFileSync(file, JSON.stringify({ 'tls-cert': '/etc/server.pem', 'tls-key': '/etc/server.key', [name]: '' }));
    expect(() => loadConfig(['--config', file], {})).toThrowError(`for --${name} (from ${file}: ${name}) but received ""`);
  });

  it('still reads an empty variable as unset, as for every flag', () => {
    expect(loadConfig(['--tls-cert', '/etc/server.pem', '--tls-key', '/etc/server.key'], { TENSORMEM_TLS_CLIENT_CA: '', TENSORMEM_TENANTS: '' })).toMatchObject({
      tls: { certFile: '/etc/server.pem', keyFile: '/etc/server.key', clientCaFile: undefined },
      tenantsFile: undefined,
    });
  });
});

describe('the environment', () => {
  it('takes --help and --version from the command line only (TENSORMEM_HELP=true does not stop the daemon)', () => {
    expect(loadConfig([], { TENSORMEM_HELP: 'true', TENSORMEM_VERSION: '1' })).toMatchObject({ help: false, version: false });
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-config-'));
    const file = join(dir, 'help.yaml');
    writeFileSync(file, 'help: true\n');
    expect(() => loadConfig(['--config', file], {})).toThrowError(`${file}: help`);
  });

  it('names a TENSORMEM_ variable that looks like a flag\'s but is not (a typo would be ignored), and not the client tools\' own', () => {
    const env = {
      TENSORMEM_MAX_BYTES: '4G',
      TENSORMEM_LEASE_TTLS: '1h',
      TENSORMEM_HOSTMAXBYTES: '1G',
      TENSORMEM_MAXBYTES: '4G',
      // Read by tensormemctl, the healthcheck, tests and the benchmark, not by the daemon.
      TENSORMEM_ADDRESS: 'unix:/tmp/x.sock',
      TENSORMEM_TOKEN: 'secret',
      TENSORMEM_HEALTH_ADDRESS: '127.0.0.1:8081',
      TENSORMEM_TEST_DAEMON: '1',
      TENSORMEM_TEST_CUDNN_LIBRARY: 'x',
      TENSORMEM_SKIP_INTEROP: '1',
      TENSORMEM_INTEROP_PYTHON: 'python3',
      TENSORMEM_INTEROP_PROTOC: '/usr/bin/protoc',
      TENSORMEM_INTEROP_GRPC_PLUGIN: '/usr/bin/grpc_python_plugin',
      TENSORMEM_GPU_RESULTS: '/tmp',
      TENSORMEM_BENCH_QUICK: '1',
      TENSORMEM_BENCH_B8_ARRAYS: '1000',
      TENSORMEM_LOAD_SECONDS: '1',
      TENSORMEM_FUZZ_BATCHES: '1',
      TENSORMEM_UPDATE_SCREENSHOT: '1',
    };
    expect(loadConfig([], env).misspelledEnv).toEqual([
      { name: 'TENSORMEM_MAX_BYTES', meant: 'TENSORMEM_MAXBYTES' },
      { name: 'TENSORMEM_LEASE_TTLS', meant: 'TENSORMEM_LEASE_TTL' },
      { name: 'TENSORMEM_HOSTMAXBYTES', meant: 'TENSORMEM_HOST_MAXBYTES' },
    ]);
  });

  it('names a TENSORMEM_ variable written in another case (TENSORMEM_maxbytes): environment names are case-sensitive, so it would be ignored', () => {
    expect(loadConfig([], { TENSORMEM_maxbytes: '4G', TENSORMEM_Lease_Ttl: '1h', tensormem_host_maxbytes: '1G' }).misspelledEnv).toEqual([
      { name: 'TENSORMEM_maxbytes', meant: 'TENSORMEM_MAXBYTES' },
      { name: 'TENSORMEM_Lease_Ttl', meant: 'TENSORMEM_LEASE_TTL' },
      { name: 'tensormem_host_maxbytes', meant: 'TENSORMEM_HOST_MAXBYTES' },
    ]);
  });
});

describe('--help', () => {
  it('lists every flag with its environment name', () => {
    const help = helpText();
    for (const flag of FLAGS) {
      expect(help).toContain(`--${flag.name}`);
      if (flag.commandLineOnly) expect(help).not.toContain(`TENSORMEM_${flag.name.toUpperCase()}`);
      else expect(help).toContain(`TENSORMEM_${flag.name.toUpperCase().replace(/-/g, '_')}`);
    }
    expect(help).toContain('seed: org.bytedeco.javacpp.maxphysicalbytes');
  });

  it('says "%" only of the size flags whose parser takes it (the others refuse --pool-chunk 1%)', () => {
    const help = helpText();
    const header = help.slice(0, help.indexOf('Flags:'));
    const takesPercent = (name: string) => {
      try {
        loadConfig([`--${name}`, '1%'], {});
        return true;
      } catch {
        return false;
      }
    };
    const sizes = FLAGS.filter((flag) => flag.type === 'size');
    for (const flag of sizes) expect({ flag: flag.name, takesPercent: takesPercent(flag.name) }).toEqual({ flag: flag.name, takesPercent: flag.percentOf !== undefined });
    // The header's rule for "%" must hold for every size flag, not only the marked ones.
    expect(sizes.some((flag) => !flag.percentOf)).toBe(true);
    expect(header).not.toMatch(/% is a share of/);
    expect(header).toContain('% only where a flag says "% of RAM" or "% of VRAM"');
  });
});

describe('resolveLimits: the caps the daemon starts with', () => {
  const MiB = 1024 ** 2;
  const device = (totalBytes: number): DeviceMemoryInfo => ({ index: 0, name: 'emulated', totalBytes, freeBytes: totalBytes, computeCapability: 'emulated' });
  const resolve = (args: string[], totalBytes = 4 * GiB, env: NodeJS.ProcessEnv = {}) => resolveLimits(loadConfig(args, env), 'host', [device(totalBytes)], 16 * GiB);
  const refusal = (args: string[], totalBytes?: number, env?: NodeJS.ProcessEnv) => {
    try {
      resolve(args, totalBytes, env);
    } catch (error) {
      return error as TensormemError;
    }
    throw new Error(`resolveLimits accepted ${args.join(' ')}`);
  };

  it('keeps DESIGN\'s defaults: device − the 1G reserve under 16 GiB, 2G from 16 GiB on', () => {
    expect(resolve([]).maxBytes).toEqual([3 * GiB]);
    expect(resolve([], 24 * GiB).maxBytes).toEqual([22 * GiB]);
    expect(resolve(['--allow-small-device', '--device-reserve', '256M'], GiB).maxBytes).toEqual([768 * MiB]);
  });

  it("derives --maxphysicalbytes by JavaCPP's rule (host cap + emulated devices + 3 x heap limit), at most the machine's RAM", () => {
    const heapLimit = getHeapStatistics().heap_size_limit;
    const roomy = resolveLimits(loadConfig(['--host-maxbytes', '1G'], {}), 'host', [device(2 * GiB)], 64 * GiB);
    expect(roomy.maxPhysicalBytes).toBe(GiB + 2 * GiB + 3 * heapLimit);
    const small = resolveLimits(loadConfig(['--host-maxbytes', '1G'], {}), 'host', [device(2 * GiB)], 4 * GiB);
    expect(small.maxPhysicalBytes).toBe(4 * GiB);
    expect(small.sources.maxphysicalbytes).toBe('derived');
    // A cap given explicitly is taken as it is (doctor warns when it is above RAM).
    expect(resolveLimits(loadConfig(['--maxphysicalbytes', '6G'], {}), 'host', [device(2 * GiB)], 4 * GiB).maxPhysicalBytes).toBe(6 * GiB);
  });

  it('refuses a derived pool cap of 0 (a small device and the default reserve), naming the reserve and a reserve that works', () => {
    const error = refusal(['--allow-small-device'], GiB);
    expect(error.metadata.field).toBe('--maxbytes');
    expect(error.message).toContain('--maxbytes is 0 bytes on device 0 (emulated, 1.00 GiB), derived as the device\'s 1.00 GiB minus --device-reserve 1.00 GiB (the default for a device under 16 GiB)');
    expect(error.message).toContain('the daemon refuses to start. Fix: --device-reserve 256M (a smaller reserve), or --maxbytes 768M.');
  });

  it.each([
    [['--device-reserve', '100%'], '--device-reserve 4.00 GiB ("100%", set by --device-reserve)', 'Fix: --device-reserve 1G (a smaller reserve), or --maxbytes 3G.'],
    [['--device-reserve', '5G'], '--device-reserve 5.00 GiB ("5G", set by --device-reserve)', 'Fix: --device-reserve 1G'],
    [['--maxbytes', '0'], '"0" set by --maxbytes', 'Fix: --maxbytes 3G.'],
    [['--maxbytes', '0%'], '"0%" set by --maxbytes', 'Fix: --maxbytes 3G.'],
    [['--maxbytes', '0.00000001%'], '"0.00000001%" set by --maxbytes', 'Fix: --maxbytes 3G.'],
  ])('refuses %j: a pool cap of 0, saying where it came from and what works', (args, from, fix) => {
    const error = refusal(args);
    expect(error.message).toContain('--maxbytes is 0 bytes on device 0 (emulated, 4.00 GiB)');
    expect(error.message).toContain(from);
    expect(error.message).toContain(fix);
  });

  // As a size under a byte ("0.5") is refused: 0 turns --maxphysicalbytes off (no cap), and leaves the CUDA runtime no reserve.
  it.each([
    [['--maxphysicalbytes', '0.000000001%'], '--maxphysicalbytes', "a share of RAM that comes to at least 1 byte, or 0 (no cap)", "0.000000001% (0 bytes of the machine's RAM, 17179869184 bytes (16.00 GiB))"],
    [['--device-reserve', '0.00000001%'], '--device-reserve', 'a share of device memory that comes to at least 1 byte, or 0', '0.00000001% (0 bytes of device 0, 4294967296 bytes (4.00 GiB))'],
  ])('refuses %j: a percentage that is not 0 but comes to 0 bytes, naming the flag, the value and what it came to', (args, flag, expected, received) => {
    const error = refusal(args);
    expect(error.metadata.field).toBe(flag);
    expect(error.message).toBe(`Expected ${expected} for ${flag} but received "${received}"`);
  });

  it('takes a percentage of 0 as 0, as the size 0: no process cap, no device reserve', () => {
    expect(resolve(['--maxphysicalbytes', '0%']).maxPhysicalBytes).toBe(0);
    expect(resolve(['--device-reserve', '0%']).deviceReserveBytes).toEqual([0]);
  });

  it('names the environment variable or the config file a 0 came from', () => {
    expect(refusal([], undefined, { TENSORMEM_MAXBYTES: '0' }).message).toContain('"0" from TENSORMEM_MAXBYTES');
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-config-')), 'zero.yaml');
    writeFileSync(file, 'device-reserve: 4G\n');
    expect(refusal(['--config', file]).message).toContain(`--device-reserve 4.00 GiB ("4G", from the config file ${file})`);
  });

  it('refuses a --host-maxbytes of 0', () => {
    for (const value of ['0', '0%']) {
      const error = refusal(['--host-maxbytes', value]);
      expect(error.metadata.field).toBe('--host-maxbytes');
      expect(error.message).toContain(`--host-maxbytes is 0 bytes ("${value}", set by --host-maxbytes)`);
      expect(error.message).toContain('Fix: --host-maxbytes 25% (the default share of RAM).');
    }
  });

  it('refuses a --maxbytes above the device, naming the flag, where the value came from and the value as given', () => {
    const tooBig = "Expected at most device 0's memory, 4294967296 bytes (4.00 GiB) for --maxbytes";
    expect(refusal(['--maxbytes', '5G']).message).toBe(`${tooBig} but received "5G (5368709120 bytes, 5.00 GiB)"`);
    expect(refusal([], undefined, { TENSORMEM_MAXBYTES: '40G' }).message).toBe(`${tooBig} (from TENSORMEM_MAXBYTES) but received "40G (42949672960 bytes, 40.00 GiB)"`);
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-config-')), 'big.yaml');
    writeFileSync(file, 'maxbytes: 5G\n');
    const fromFile = refusal(['--config', file]);
    expect(fromFile.message).toBe(`${tooBig} (from ${file}: maxbytes) but received "5G (5368709120 bytes, 5.00 GiB)"`);
    expect(fromFile.metadata.field).toBe(`--maxbytes (from ${file}: maxbytes)`);
  });

  it('takes a --maxphysicalbytes of 0 as no process cap (JavaCPP\'s rule), not as a cap of 0', () => {
    expect(resolve(['--maxphysicalbytes', '0']).maxPhysicalBytes).toBe(0);
  });
});
