/**
 * A unix socket file takes its mode from the umask at bind(2). Under a umask of 0 (common in containers)
 * it is srwxrwxrwx from the bind until the chmod to 0660 that follows, and a local user who connects in
 * that window keeps the connection. `withOthersMasked` runs a bind with the umask's "other" bits set as
 * well, so the file is never open to other users; the umask is put back once the bind is done. The mask
 * only narrows what the process creates meanwhile (the owner's and group's bits are the umask's own).
 * Overlapping binds share one masking: the umask comes back when the last of them is done.
 */
let binds = 0;
let umaskBefore = 0;

export async function withOthersMasked<T>(bind: () => Promise<T>): Promise<T> {
  if (binds++ === 0) {
    umaskBefore = process.umask(0o007);
    process.umask(umaskBefore | 0o007);
  }
  try {
    return await bind();
  } finally {
    if (--binds === 0) process.umask(umaskBefore);
  }
}
