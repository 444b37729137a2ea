/**
 * The free blocks of a pool, ordered by (bytes, chunk sequence, offset): an intrusive red-black tree.
 *
 * Intrusive: the tree links (left/right/parent/red) live in the block objects themselves, so
 * inserting or removing a free block allocates nothing. insert, remove and bestFit are O(log n);
 * the largest free block is cached, so reading it is O(1) (keeping it current costs one
 * predecessor walk, O(log n), when the largest block is removed).
 *
 * Ties on size go to the lowest (chunk, offset): with the same size available in several places,
 * the pool fills from the front of its oldest chunk, which keeps later chunks free to trim.
 *
 * A node's key (bytes, chunk, offset) must not change while it is in the tree: remove it, change
 * it, insert it again.
 */

export interface FreeTreeNode<N extends FreeTreeNode<N>> {
  /** Key 1: the free block's size in bytes. */
  bytes: number;
  /** Key 3: byte offset inside its chunk. */
  offset: number;
  /** Key 2: the chunk's sequence number (chunks are numbered in the order they were obtained). */
  readonly chunk: { readonly seq: number };
  left: N | null;
  right: N | null;
  parent: N | null;
  red: boolean;
}

function precedes<N extends FreeTreeNode<N>>(a: N, b: N): boolean {
  if (a.bytes !== b.bytes) return a.bytes < b.bytes;
  if (a.chunk !== b.chunk) return a.chunk.seq < b.chunk.seq;
  return a.offset < b.offset;
}

export class FreeBlockIndex<N extends FreeTreeNode<N>> {
  private root: N | null = null;
  private max: N | null = null;
  private count = 0;
  private bytesTotal = 0;

  /** Free blocks in the index. */
  get size(): number {
    return this.count;
  }

  /** Sum of the free blocks' bytes. */
  get totalBytes(): number {
    return this.bytesTotal;
  }

  /** The largest free block (the last by key), or null when there is none. O(1). */
  get largest(): N | null {
    return this.max;
  }

  /** Bytes of the largest free block; 0 when there is none. O(1). */
  get largestBytes(): number {
    return this.max === null ? 0 : this.max.bytes;
  }

  /** The smallest free block of at least `bytes`; among equal sizes the lowest (chunk, offset). O(log n). */
  bestFit(bytes: number): N | null {
    let node = this.root;
    let best: N | null = null;
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

  insert(node: N): void {
    let parent: N | null = null;
    let cursor = this.root;
    while (cursor !== null) {
      parent = cursor;
      cursor = precedes(node, cursor) ? cursor.left : cursor.right;
    }
    node.parent = parent;
    node.left = null;
    node.right = null;
    node.red = true;
    if (parent === null) this.root = node;
    else if (precedes(node, parent)) parent.left = node;
    else parent.right = node;
    if (this.max === null || precedes(this.max, node)) this.max = node;
    this.count++;
    this.bytesTotal += node.bytes;
    this.insertFixup(node);
  }

  /** Removes `node`, which must be in this index (the caller tracks that; this is not checked). */
  remove(node: N): void {
    if (node === this.max) this.max = this.predecessor(node);
    let removedRed = node.red;
    let child: N | null;
    let childParent: N | null;
    if (node.left === null) {
      child = node.right;
      childParent = node.parent;
      this.transplant(node, node.right);
    } else if (node.right === null) {
      child = node.left;
      childParent = node.parent;
      this.transplant(node, node.left);
    } else {
      const successor = minimum(node.right);
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
    this.count--;
    this.bytesTotal -= node.bytes;
  }

  /** Forgets every node (their links are left as they are: the caller drops the nodes). */
  clear(): void {
    this.root = null;
    this.max = null;
    this.count = 0;
    this.bytesTotal = 0;
  }

  /** Whether `node` is linked into this index (O(log n): walks up to the root). */
  contains(node: N): boolean {
    let cursor: N = node;
    while (cursor.parent !== null) cursor = cursor.parent;
    return cursor === this.root;
  }

  /** In key order; O(n), for snapshots and tests. */
  *nodes(): IterableIterator<N> {
    const stack: N[] = [];
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

  /**
   * Checks the tree (order, parent links, no red node with a red child, equal black height, cached
   * max, count, byte total). Returns a description of the first violation, or null. O(n), for tests.
   */
  violation(): string | null {
    if (this.root !== null && this.root.parent !== null) return 'root has a parent';
    if (this.root !== null && this.root.red) return 'root is red';
    let count = 0;
    let bytes = 0;
    let previous: N | null = null;
    for (const node of this.nodes()) {
      if (previous !== null && !precedes(previous, node)) return `keys out of order at bytes=${node.bytes} offset=${node.offset}`;
      if (node.left !== null && node.left.parent !== node) return 'left child does not point back to its parent';
      if (node.right !== null && node.right.parent !== node) return 'right child does not point back to its parent';
      if (node.red && ((node.left !== null && node.left.red) || (node.right !== null && node.right.red))) return 'red node with a red child';
      previous = node;
      count++;
      bytes += node.bytes;
    }
    if (blackHeight(this.root) < 0) return 'unequal black heights';
    if (this.max !== previous) return 'cached largest block is not the last node';
    if (count !== this.count) return `count ${this.count} but ${count} nodes`;
    if (bytes !== this.bytesTotal) return `byte total ${this.bytesTotal} but nodes sum to ${bytes}`;
    return null;
  }

  private predecessor(node: N): N | null {
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

  private transplant(target: N, replacement: N | null): void {
    const parent = target.parent;
    if (parent === null) this.root = replacement;
    else if (target === parent.left) parent.left = replacement;
    else parent.right = replacement;
    if (replacement !== null) replacement.parent = parent;
  }

  private rotateLeft(node: N): void {
    const pivot = node.right!;
    node.right = pivot.left;
    if (pivot.left !== null) pivot.left.parent = node;
    this.transplant(node, pivot);
    pivot.left = node;
    node.parent = pivot;
  }

  private rotateRight(node: N): void {
    const pivot = node.left!;
    node.left = pivot.right;
    if (pivot.right !== null) pivot.right.parent = node;
    this.transplant(node, pivot);
    pivot.right = node;
    node.parent = pivot;
  }

  private insertFixup(inserted: N): void {
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
          const newParent = node.parent!;
          newParent.red = false;
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
          const newParent = node.parent!;
          newParent.red = false;
          grandparent.red = true;
          this.rotateLeft(grandparent);
        }
      }
      parent = node.parent;
    }
    this.root!.red = false;
  }

  /** `node` (possibly null) carries an extra black; `parent` is its parent. */
  private deleteFixup(start: N | null, startParent: N | null): void {
    let node = start;
    let parent = startParent;
    while (node !== this.root && (node === null || !node.red)) {
      // node is not the root, so parent is set; its sibling exists because node's side is one black short.
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

function minimum<N extends FreeTreeNode<N>>(start: N): N {
  let node = start;
  while (node.left !== null) node = node.left;
  return node;
}

/** Black height of the subtree, or -1 when two paths differ. */
function blackHeight<N extends FreeTreeNode<N>>(node: N | null): number {
  if (node === null) return 1;
  const left = blackHeight(node.left);
  const right = blackHeight(node.right);
  if (left < 0 || right < 0 || left !== right) return -1;
  return left + (node.red ? 0 : 1);
}
