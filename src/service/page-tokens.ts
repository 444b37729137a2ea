/**
 * Page tokens of the list RPCs that page (ListLeases, ListArrays). A token holds the serial of the
 * last item of the page before (items are listed in the order of their serials, so one removed or
 * added between pages neither repeats nor shifts the rest) and a tag of the listing it belongs to, so
 * that a token passed to another listing (another tenant's leases, another lease's arrays) is refused
 * rather than silently skipping that listing's items below its serial.
 */
import { hash } from 'node:crypto';
import { invalidArgument } from '../errors';

/** One listing a page token can belong to. */
export interface Listing {
  /** The RPC, for errors: "ListLeases". */
  rpc: string;
  /** Tells listings apart (hashed into the token's tag). */
  key: string;
  /** The listing in words, for errors: `tenant "a"'s leases`. */
  name: string;
}

const PAGE_TOKEN = /^p(\d{1,15})\.([0-9a-f]{12})$/;

function tagOf(listing: Listing): string {
  return hash('sha256', listing.key, 'hex').slice(0, 12);
}

/** The token of the page after the item with serial `afterSerial` of `listing`. */
export function pageTokenOf(afterSerial: number, listing: Listing): string {
  return `p${afterSerial}.${tagOf(listing)}`;
}

/**
 * The serial a page of `listing` starts after: 0 for an empty token; INVALID_ARGUMENT naming page_token
 * for a token the daemon did not give, or gave for another listing.
 */
export function pageStart(token: string, listing: Listing): number {
  if (token === '') return 0;
  const match = PAGE_TOKEN.exec(token);
  if (!match) throw invalidArgument('page_token', `empty or a previous ${listing.rpc} reply's next_page_token`, token);
  if (match[2] !== tagOf(listing)) {
    throw invalidArgument('page_token', `a next_page_token of a listing of ${listing.name} (this one came from another listing: start again from an empty page_token)`, token);
  }
  return Number(match[1]);
}
