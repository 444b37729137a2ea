/**
 * The free blocks of a pool, for best fit: exact-size buckets, and a red-black tree of the distinct
 * sizes.
 *
 * - bestFit(bytes) finds the smallest size ≥ bytes in the size tree (O(log d), d = distinct free
 *   sizes) and takes the head of that size's bucket. Sizes are exact, so the block found is always a
 *   smallest fitting one; among blocks of that size it is the one that entered the index last (LIFO:
 *   recently freed memory is the likeliest to be warm).
 * - insert is O(log d) (finding the size's bucket); remove is O(1), plus O(log d) when it empties its
 *   bucket. resize re-keys a block that is alone in its bucket in place when the size order allows
 *   (expected O(1)), as when the one free tail of a chunk shrinks and grows back. The links live in
 *   the blocks (prevFree/nextFree/freeBucket), so a block entering or leaving the index allocates
 *   nothing unless its size is new.
 * - The largest free block is the head of the tree's last bucket, cached: O(1).
 *
 * Why buckets rather than one tree of all free blocks: with 10⁵–10⁶ free blocks a tree of blocks is
 * 20 levels of scattered objects, a cache miss per level; the distinct sizes of a fragmented pool
 * number in the hundreds or thousands (256-byte units), so the size tree stays small and hot.
 *
 * A block's `bytes` must not change while it is in the index: remove it, change it, insert it again.
 */

/** The bucket a block is filed in; opaque outside this file. */
export interface FreeBucketRef {
  readonly bytes: number;
}

/** What the index needs of a free block: its size, and three links it owns while the block is in the index. */
export interface FreeListNode<N extends FreeListNode<N>> {
  bytes: number;
  prevFree: N | null;
  nextFree: N | null;
  freeBucket: FreeBucketRef | null;
}

/** All free blocks of one size: a list by entry into the index, newest first; a node of the size tree. */
class SizeBucket<N> implements FreeBucketRef {
  head: N | null = null;
  left: SizeBucket<N> | null = null;
  right: SizeBucket<N> | null = null;
  parent: SizeBucket<N> | null = null;
  red = false;

  constructor(public bytes: number) {}
}

export class FreeBlockIndex<N extends FreeListNode<N>> {
  private readonly sizes = new SizeTree<N>();
  private bucketCount = 0;
  private count = 0;
  private bytesTotal = 0;

  /** Free blocks in the index. */
  get size(): number {
    return this.count;
  }

  /** Distinct sizes among the free blocks. */
  get distinctSizes(): number {
    return this.bucketCount;
  }

  /** Sum of the free blocks' bytes. */
  get totalBytes(): number {
    return this.bytesTotal;
  }

  /** A largest free block, or null when there is none. O(1). */
  get largest(): N | null {
    const bucket = this.sizes.max;
    return bucket === null ? null : bucket.head;
  }

  /** Bytes of the largest free block; 0 when there is none. O(1). */
  get largestBytes(): number {
    const bucket = this.sizes.max;
    return bucket === null ? 0 : bucket.bytes;
  }

  /** A smallest free block of at least `bytes` (the newest of that size), or null. O(log d). */
  bestFit(bytes: number): N | null {
    const bucket = this.sizes.ceiling(bytes);
    return bucket === null ? null : bucket.head;
  }

  insert(node: N): void {
    const bucket = this.sizes.findOrInsert(node.bytes);
    if (bucket.head === null) this.bucketCount++;
    const head = bucket.head;
    node.freeBucket = bucket;
    node.prevFree = null;
    node.nextFree = head;
    if (head !== null) head.prevFree = node;
    bucket.head = node;
    this.count++;
    this.bytesTotal += node.bytes;
  }

  /** Removes `node`, which must be in this index (the caller tracks that; this is not checked). */
  remove(node: N): void {
    const prev = node.prevFree;
    const next = node.nextFree;
    if (next !== null) next.prevFree = prev;
    if (prev !== null) {
      prev.nextFree = next;
    } else {
      const bucket = node.freeBucket as SizeBucket<N>;
      bucket.head = next;
      if (next === null) {
        this.sizes.remove(bucket);
        this.bucketCount--;
      }
    }
    node.prevFree = null;
    node.nextFree = null;
    node.freeBucket = null;
    this.count--;
    this.bytesTotal -= node.bytes;
  }

  /**
   * Changes the size of `node` (in this index) to `bytes`: in place when it is alone in its bucket
   * and no other size lies between the old and the new, else by remove and insert. Either way the
   * block ends up the newest of its size, as if freshly inserted.
   */
  resize(node: N, bytes: number): void {
    const bucket = node.freeBucket as SizeBucket<N>;
    if (bucket.head === node && node.nextFree === null) {
      const below = predecessor(bucket);
      const above = successor(bucket);
      if ((below === null || below.bytes < bytes) && (above === null || bytes < above.bytes)) {
        this.bytesTotal += bytes - node.bytes;
        bucket.bytes = bytes;
        node.bytes = bytes;
        return;
      }
    }
    this.remove(node);
    node.bytes = bytes;
    this.insert(node);
  }

  /** Forgets every block (their links are left as they are: the caller drops the blocks). */
  clear(): void {
    this.bucketCount = 0;
    this.sizes.clear();
    this.count = 0;
    this.bytesTotal = 0;
  }

  /** Every block, by size ascending, newest first within a size. O(n), for snapshots and tests. */
  *nodes(): IterableIterator<N> {
    for (const bucket of this.sizes.inOrder()) {
      for (let node = bucket.head; node !== null; node = node.nextFree) yield node;
    }
  }

  /**
   * Checks the size tree (order, parent links, red-black rules, cached max), that every bucket is
   * non-empty, filed under its size, holds blocks of that size with consistent links, and the count
   * and byte total. Returns a description of the first violation, or null. O(n), for tests.
   */
  violation(): string | null {
    const treeViolation = this.sizes.violation();
    if (treeViolation !== null) return `size tree: ${treeViolation}`;
    let buckets = 0;
    let count = 0;
    let bytes = 0;
    for (const bucket of this.sizes.inOrder()) {
      buckets++;
      if (bucket.head === null) return `bucket of ${bucket.bytes} bytes is empty`;
      if (bucket.head.prevFree !== null) return `head of bucket ${bucket.bytes} has a prevFree link`;
      for (let node: N | null = bucket.head; node !== null; node = node.nextFree) {
        if (node.bytes !== bucket.bytes) return `a block of ${node.bytes} bytes in the bucket of ${bucket.bytes}`;
        if (node.freeBucket !== bucket) return `a block in the bucket of ${bucket.bytes} points to another bucket`;
        if (node.nextFree !== null && node.nextFree.prevFree !== node) return `broken prevFree link in bucket ${bucket.bytes}`;
        count++;
        bytes += node.bytes;
      }
    }
    if (buckets !== this.bucketCount) return `bucket count ${this.bucketCount} but ${buckets} in the size tree`;
    if (count !== this.count) return `count ${this.count} but ${count} blocks`;
    if (bytes !== this.bytesTotal) return `byte total ${this.bytesTotal} but blocks sum to ${bytes}`;
    return null;
  }

}

/** A red-black tree of buckets keyed by their (distinct) byte size, with parent links and a cached max. */
class SizeTree<N> {
  private root: SizeBucket<N> | null = null;
  max: SizeBucket<N> | null = null;

  /** The bucket of the smallest size ≥ bytes, or null. */
  ceiling(bytes: number): SizeBucket<N> | null {
    let node = this.root;
    let best: SizeBucket<N> | null = null;
    while (node !== null) {
      if (node.bytes >= bytes) {
        best = node;
        node = node.left;
      } else {
        node = node.right;
      }
    }
    return best;
  }

  /** The bucket of exactly `bytes`, created (empty) when there is none. */
  findOrInsert(bytes: number): SizeBucket<N> {
    let parent: SizeBucket<N> | null = null;
    let cursor = this.root;
    while (cursor !== null) {
      if (bytes === cursor.bytes) return cursor;
      parent = cursor;
      cursor = bytes < cursor.bytes ? cursor.left : cursor.right;
    }
    const node = new SizeBucket<N>(bytes);
    node.parent = parent;
    node.left = null;
    node.right = null;
    node.red = true;
    if (parent === null) this.root = node;
    else if (node.bytes < parent.bytes) parent.left = node;
    else parent.right = node;
    if (this.max === null || node.bytes > this.max.bytes) this.max = node;
    this.insertFixup(node);
    return node;
  }

  remove(node: SizeBucket<N>): void {
    if (node === this.max) this.max = predecessor(node);
    let removedRed = node.red;
    let child: SizeBucket<N> | null;
    let childParent: SizeBucket<N> | null;
    if (node.left === null) {
      child = node.right;
      childParent = node.parent;
      this.transplant(node, node.right);
    } else if (node.right === null) {
      child = node.left;
      childParent = node.parent;
      this.transplant(node, node.left);
    } else {
      let successor = node.right;
      while (successor.left !== null) successor = successor.left;
      removedRed = successor.red;
      child = successor.right;
      if (successor.parent === node) {
        childParent = successor;
      } else {
        childParent = successor.parent;
        this.transplant(successor, successor.right);
        successor.right = node.right;
        successor.right.parent = successor;
      }
      this.transplant(node, successor);
      successor.left = node.left;
      successor.left.parent = successor;
      successor.red = node.red;
    }
    if (!removedRed) this.deleteFixup(child, childParent);
    node.left = null;
    node.right = null;
    node.parent = null;
  }

  clear(): void {
    this.root = null;
    this.max = null;
  }

  *inOrder(): IterableIterator<SizeBucket<N>> {
    const stack: Array<SizeBucket<N>> = [];
    let node = this.root;
    while (node !== null || stack.length > 0) {
      while (node !== null) {
        stack.push(node);
        node = node.left;
      }
      node = stack.pop()!;
      yield node;
      node = node.right;
    }
  }

  violation(): string | null {
    if (this.root !== null && this.root.parent !== null) return 'root has a parent';
    if (this.root !== null && this.root.red) return 'root is red';
    let previous: SizeBucket<N> | null = null;
    for (const node of this.inOrder()) {
      if (previous !== null && previous.bytes >= node.bytes) return `sizes out of order at ${node.bytes} bytes`;
      if (node.left !== null && node.left.parent !== node) return 'left child does not point back to its parent';
      if (node.right !== null && node.right.parent !== node) return 'right child does not point back to its parent';
      if (node.red && ((node.left !== null && node.left.red) || (node.right !== null && node.right.red))) return 'red node with a red child';
      previous = node;
    }
    if (blackHeight(this.root) < 0) return 'unequal black heights';
    if (this.max !== previous) return 'cached largest size is not the last node';
    return null;
  }

  private transplant(target: SizeBucket<N>, replacement: SizeBucket<N> | null): void {
    const parent = target.parent;
    if (parent === null) this.root = replacement;
    else if (target === parent.left) parent.left = replacement;
    else parent.right = replacement;
    if (replacement !== null) replacement.parent = parent;
  }

  private rotateLeft(node: SizeBucket<N>): void {
    const pivot = node.right!;
    node.right = pivot.left;
    if (pivot.left !== null) pivot.left.parent = node;
    this.transplant(node, pivot);
    pivot.left = node;
    node.parent = pivot;
  }

  private rotateRight(node: SizeBucket<N>): void {
    const pivot = node.left!;
    node.left = pivot.right;
    if (pivot.right !== null) pivot.right.parent = node;
    this.transplant(node, pivot);
    pivot.right = node;
    node.parent = pivot;
  }

  private insertFixup(inserted: SizeBucket<N>): void {
    let node = inserted;
    let parent = node.parent;
    while (parent !== null && parent.red) {
      // A red parent is never the root, so the grandparent exists.
      const grandparent = parent.parent!;
      if (parent === grandparent.left) {
        const uncle = grandparent.right;
        if (uncle !== null && uncle.red) {
          parent.red = false;
          uncle.red = false;
          grandparent.red = true;
          node = grandparent;
        } else {
          if (node === parent.right) {
            node = parent;
            this.rotateLeft(node);
          }
          node.parent!.red = false;
          grandparent.red = true;
          this.rotateRight(grandparent);
        }
      } else {
        const uncle = grandparent.left;
        if (uncle !== null && uncle.red) {
          parent.red = false;
          uncle.red = false;
          grandparent.red = true;
          node = grandparent;
        } else {
          if (node === parent.left) {
            node = parent;
            this.rotateRight(node);
          }
          node.parent!.red = false;
          grandparent.red = true;
          this.rotateLeft(grandparent);
        }
      }
      parent = node.parent;
    }
    this.root!.red = false;
  }

  /** `start` (possibly null) carries an extra black; `startParent` is its parent. */
  private deleteFixup(start: SizeBucket<N> | null, startParent: SizeBucket<N> | null): void {
    let node = start;
    let parent = startParent;
    while (node !== this.root && (node === null || !node.red)) {
      // node is not the root, so it has a parent; its sibling exists because node's side is one black short.
      const p = parent!;
      if (node === p.left) {
        let sibling = p.right!;
        if (sibling.red) {
          sibling.red = false;
          p.red = true;
          this.rotateLeft(p);
          sibling = p.right!;
        }
        if ((sibling.left === null || !sibling.left.red) && (sibling.right === null || !sibling.right.red)) {
          sibling.red = true;
          node = p;
          parent = p.parent;
        } else {
          if (sibling.right === null || !sibling.right.red) {
            sibling.left!.red = false;
            sibling.red = true;
            this.rotateRight(sibling);
            sibling = p.right!;
          }
          sibling.red = p.red;
          p.red = false;
          sibling.right!.red = false;
          this.rotateLeft(p);
          node = this.root;
          parent = null;
        }
      } else {
        let sibling = p.left!;
        if (sibling.red) {
          sibling.red = false;
          p.red = true;
          this.rotateRight(p);
          sibling = p.left!;
        }
        if ((sibling.left === null || !sibling.left.red) && (sibling.right === null || !sibling.right.red)) {
          sibling.red = true;
          node = p;
          parent = p.parent;
        } else {
          if (sibling.left === null || !sibling.left.red) {
            sibling.right!.red = false;
            sibling.red = true;
            this.rotateLeft(sibling);
            sibling = p.left!;
          }
          sibling.red = p.red;
          p.red = false;
          sibling.left!.red = false;
          this.rotateRight(p);
          node = this.root;
          parent = null;
        }
      }
    }
    if (node !== null) node.red = false;
  }
}

function predecessor<N>(node: SizeBucket<N>): SizeBucket<N> | null {
  if (node.left !== null) {
    let cursor = node.left;
    while (cursor.right !== null) cursor = cursor.right;
    return cursor;
  }
  let child = node;
  let parent = node.parent;
  while (parent !== null && child === parent.left) {
    child = parent;
    parent = parent.parent;
  }
  return parent;
}

function successor<N>(node: SizeBucket<N>): SizeBucket<N> | null {
  if (node.right !== null) {
    let cursor = node.right;
    while (cursor.left !== null) cursor = cursor.left;
    return cursor;
  }
  let child = node;
  let parent = node.parent;
  while (parent !== null && child === parent.right) {
    child = parent;
    parent = parent.parent;
  }
  return parent;
}

/** Black height of the subtree, or -1 when two paths differ. */
function blackHeight<N>(node: SizeBucket<N> | null): number {
  if (node === null) return 1;
  const left = blackHeight(node.left);
  const right = blackHeight(node.right);
  if (left < 0 || right < 0 || left !== right) return -1;
  return left + (node.red ? 0 : 1);
}
