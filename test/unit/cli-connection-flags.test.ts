/**
 * connectionFlags: the flags put prints in its `tensormemctl get …` line, so that the line reaches the
 * same daemon the same way when pasted into a shell (test/integration/tensormemctl.test.ts runs it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DAEMON_ADDRESS, connectionFlags } from '../../src/cli/address';

/** The words a POSIX shell makes of `text`. */
function shellWords(text: string, cwd?: string): string[] {
  const run = spawnSync('/bin/sh', ['-c', `for w in ${text}; do printf '%s\\0' "$w"; done`], { encoding: 'utf8', cwd });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.split('\0').slice(0, -1);
}

describe('connectionFlags', () => {
  it('leaves the default address out and names any other, with the --tls-* flags given', () => {
    expect(connectionFlags(DEFAULT_DAEMON_ADDRESS, {})).toEqual([]);
    expect(connectionFlags('127.0.0.1:7070', { ca: 'ca.pem', serverName: 'tensormem.internal' })).toEqual(['--address', '127.0.0.1:7070', '--tls-ca', 'ca.pem', '--tls-server-name', 'tensormem.internal']);
    expect(connectionFlags('[::1]:7070', { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' })).toEqual(['--address', "'[::1]:7070'", '--tls-ca', 'ca.pem', '--tls-cert', 'c.pem', '--tls-key', 'k.pem']);
  });

  it('quotes what a shell would split or expand, so that it reads back each value as given', () => {
    const values = ['unix:/tmp/my daemon.sock', "it's.pem", '$HOME/ca.pem', '*.pem', 'a"b;c'];
    for (const value of values) {
      expect(shellWords(connectionFlags(value, { ca: value }).join(' '))).toEqual(['--address', value, '--tls-ca', value]);
    }
  });

  it('quotes an IPv6 address, whose brackets a shell reads as a glob: a file named 1:7070 in the folder does not replace it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-shell-glob-'));
    try {
      writeFileSync(join(dir, '1:7070'), '');
      expect(shellWords(connectionFlags('[::1]:7070', {}).join(' '), dir)).toEqual(['--address', '[::1]:7070']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
