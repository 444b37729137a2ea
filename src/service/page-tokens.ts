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
 */
import { createHmac, randomBytes } from 'node:crypto';
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

const PAGE_TOKEN = /^p([1-9]\d{0,14})\.([0-9a-f]{16})$/;

function macOf(afterSerial: number, listing: Listing): string {
  return createHmac('sha256', TOKEN_KEY).update(`${listing.key}\n${afterSerial}`).digest('hex').slice(0, 16);
}

/** The token of the page after the item with serial `afterSerial` of `listing`. */
export function pageTokenOf(afterSerial: number, listing: Listing): string {
  return `p${afterSerial}.${macOf(afterSerial, listing)}`;
}

/**
 * The serial a page of `listing` starts after: 0 for an empty token; INVALID_ARGUMENT naming page_token
 * for a token this daemon process did not give for this listing.
 */
export function pageStart(token: string, listing: Listing): number {
  if (token === '') return 0;
  const match = PAGE_TOKEN.exec(token);
  if (!match) throw invalidArgument('page_token', `empty or a previous ${listing.rpc} reply's next_page_token`, token);
  const afterSerial = Number(match[1]);
  if (match[2] !== macOf(afterSerial, listing)) {
    throw invalidArgument(
      'page_token',
      `a next_page_token this daemon gave for a listing of ${listing.name} (this one came from another listing, from an earlier run of the daemon, or was altered: start again from an empty page_token)`,
      token,
    );
  }
  return afterSerial;
}
