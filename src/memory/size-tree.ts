/**
 * A red-black tree of size buckets keyed by their distinct size, with parent links and a cached
 * largest bucket: the size index of a pool's free spans (FreeSpanTable). Each bucket heads a list of
 * the free spans of exactly its size; the list itself lives in the table's records (`head` is a span
 * id, -1 for none), so the tree never sees a span.
 *
 * With 10^5-10^6 free spans, a tree of spans would be 20 levels of scattered nodes, a cache miss per
 * level; the distinct sizes of a fragmented pool number in the hundreds or thousands (256-byte units),
 * so this tree stays small and in cache. ceiling, findOrInsert and remove are O(log d), d = distinct sizes.
 */

/** All free spans of one size; a node of the size tree. */
export class SizeBucket {
  /** The newest span of this size (the head of its list in the span table), or -1 when empty. */
  head = -1;
  left: SizeBucket | null = null;
  right: SizeBucket | null = null;
  parent: SizeBucket | null = null;
  red = false;

  constructor(public size: number) {}
}

export class SizeTree {
  private root: SizeBucket | null = null;
  max: SizeBucket | null = null;

  /** The bucket of the smallest size ≥ size, or null. */
  ceiling(size: number): SizeBucket | null {
    let node = this.root;
    let best: SizeBucket | null = null;
    while (node !== null) {
      if (node.size >= size) {
        best = node;
        node = node.left;
      } else {
        node = node.right;
      }
    }
    return best;
  }

  /** The bucket of exactly `size`, or null. */
  find(size: number): SizeBucket | null {
    let node = this.root;
    while (node !== null && node.size !== size) node = size < node.size ? node.left : node.right;
    return node;
  }

  /** The bucket of exactly `size`, created (empty) when there is none. */
  findOrInsert(size: number): SizeBucket {
    let parent: SizeBucket | null = null;
    let cursor = this.root;
    while (cursor !== null) {
      if (size === cursor.size) return cursor;
      parent = cursor;
      cursor = size < cursor.size ? cursor.left : cursor.right;
    }
    const node = new SizeBucket(size);
    node.parent = parent;
    node.left = null;
    node.right = null;
    node.red = true;
    if (parent === null) this.root = node;
    else if (node.size < parent.size) parent.left = node;
    else parent.right = node;
    if (this.max === null || node.size > this.max.size) this.max = node;
    this.insertFixup(node);
    return node;
  }

  remove(node: SizeBucket): void {
    if (node === this.max) this.max = predecessor(node);
    let removedRed = node.red;
    let child: SizeBucket | null;
    let childParent: SizeBucket | null;
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

  *inOrder(): IterableIterator<SizeBucket> {
    const stack: Array<SizeBucket> = [];
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
    let previous: SizeBucket | null = null;
    for (const node of this.inOrder()) {
      if (previous !== null && previous.size >= node.size) return `sizes out of order at ${node.size} size`;
      if (node.left !== null && node.left.parent !== node) return 'left child does not point back to its parent';
      if (node.right !== null && node.right.parent !== node) return 'right child does not point back to its parent';
      if (node.red && ((node.left !== null && node.left.red) || (node.right !== null && node.right.red))) return 'red node with a red child';
      previous = node;
    }
    if (blackHeight(this.root) < 0) return 'unequal black heights';
    if (this.max !== previous) return 'cached largest size is not the last node';
    return null;
  }

  private transplant(target: SizeBucket, replacement: SizeBucket | null): void {
    const parent = target.parent;
    if (parent === null) this.root = replacement;
    else if (target === parent.left) parent.left = replacement;
    else parent.right = replacement;
    if (replacement !== null) replacement.parent = parent;
  }

  private rotateLeft(node: SizeBucket): void {
    const pivot = node.right!;
    node.right = pivot.left;
    if (pivot.left !== null) pivot.left.parent = node;
    this.transplant(node, pivot);
    pivot.left = node;
    node.parent = pivot;
  }

  private rotateRight(node: SizeBucket): void {
    const pivot = node.left!;
    node.left = pivot.right;
    if (pivot.right !== null) pivot.right.parent = node;
    this.transplant(node, pivot);
    pivot.right = node;
    node.parent = pivot;
  }

  private insertFixup(inserted: SizeBucket): void {
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
  private deleteFixup(start: SizeBucket | null, startParent: SizeBucket | null): void {
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

export function predecessor(node: SizeBucket): SizeBucket | null {
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

export function successor(node: SizeBucket): SizeBucket | null {
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
function blackHeight(node: SizeBucket | null): number {
  if (node === null) return 1;
  const left = blackHeight(node.left);
  const right = blackHeight(node.right);
  if (left < 0 || right < 0 || left !== right) return -1;
  return left + (node.red ? 0 : 1);
}
