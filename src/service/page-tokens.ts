/**
 * Page tokens of the list RPCs that page (ListLeases, ListArrays). A token holds the serial of the
 * last item of the page before (items are listed in the order of their serials, so one removed or
 * added between pages neither repeats nor shifts the rest) and a MAC of that serial and the listing it
 * belongs to, under a key drawn once per daemon process. So only a token this process gave for this
 * listing is taken: one passed to another listing (another tenant's leases, another lease's arrays)
 * would silently skip that listing's items below its serial; one with its serial altered would skip or
 * repeat items; and one of an earlier run of the daemon (whose serials began again at 1: a ListLeases
 * token of the same tenant matched after a restart, and a paging client was shown only the leases
 * opened after its old position, none of the first ones) would do the same. Each is INVALID_ARGUMENT.
 *
 * The serial and its MAC travel enciphered, as one AES block under a second key of the process: a
 * ListLeases serial counts every tenant's leases, and a token that held it in clear (`p303.…` after a
 * tenant's `p2.…`) told a tenant how many leases the others had opened between two of its own.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from '../errors';

/** One listing a page token can belong to. */
export interface Listing {
  /** The RPC, for errors: "ListLeases". */
  rpc: string;
  /** Tells listings apart (in the token's MAC). */
  key: string;
  /** The listing in words, for errors: `tenant "a"'s leases`. */
  name: string;
}

/** Drawn once per process: a token of another daemon process (an earlier run) matches no listing of this one. */
const TOKEN_KEY = randomBytes(32);
/** Enciphers a token's serial and MAC (one AES block), so that the token shows neither. */
const CIPHER_KEY = randomBytes(32);

/** `p` and one AES block in hex: the serial (8 bytes, big-endian) and its MAC (8 bytes). */
const PAGE_TOKEN = /^p([0-9a-f]{32})$/;

function macOf(afterSerial: number, listing: Listing): Buffer {
  return createHmac('sha256', TOKEN_KEY).update(`${listing.key}\n${afterSerial}`).digest().subarray(0, 8);
}

/** One 16-byte block through AES-256 under CIPHER_KEY (a single block: no mode, IV or padding to speak of). */
function aesBlock(block: Buffer, encrypt: boolean): Buffer {
  const cipher = encrypt ? createCipheriv('aes-256-ecb', CIPHER_KEY, null) : createDecipheriv('aes-256-ecb', CIPHER_KEY, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(block), cipher.final()]);
}

/** The token of the page after the item with serial `afterSerial` of `listing`. */
export function pageTokenOf(afterSerial: number, listing: Listing): string {
  const block = Buffer.alloc(16);
  block.writeBigUInt64BE(BigInt(afterSerial));
  macOf(afterSerial, listing).copy(block, 8);
  return `p${aesBlock(block, true).toString('hex')}`;
}

/**
 * The serial a page of `listing` starts after: 0 for an empty token; INVALID_ARGUMENT naming page_token
 * for a token this daemon process did not give for this listing.
 */
export function pageStart(token: string, listing: Listing): number {
  if (token === '') return 0;
  const match = PAGE_TOKEN.exec(token);
  if (!match) throw invalidArgument('page_token', `empty or a previous ${listing.rpc} reply's next_page_token`, token);
  const block = aesBlock(Buffer.from(match[1], 'hex'), false);
  const afterSerial = Number(block.readBigUInt64BE(0));
  if (!Number.isSafeInteger(afterSerial) || afterSerial < 1 || !timingSafeEqual(block.subarray(8), macOf(afterSerial, listing))) {
    throw invalidArgument(
      'page_token',
      `a next_page_token this daemon gave for a listing of ${listing.name} (this one came from another listing, from an earlier run of the daemon, or was altered: start again from an empty page_token)`,
      token,
    );
  }
  return afterSerial;
}
