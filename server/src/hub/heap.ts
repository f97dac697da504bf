/**
 * A binary min-heap of (key, item) pairs, with lazy invalidation: entries are never updated or
 * removed in place. The owner decides at pop time whether an entry is still current (see Hub).
 */
export class MinHeap<T> {
  private keys: number[] = [];
  private items: T[] = [];

  /**
   * A heap holding one entry, its arrays sized for one (an empty heap's first push sizes each for
   * 17): most topics of a big fan-in have one live reader, and thousands of them are idle.
   */
  static of<T>(key: number, item: T): MinHeap<T> {
    const heap = new MinHeap<T>();
    heap.keys = [key];
    heap.items = [item];
    return heap;
  }

  get size(): number {
    return this.keys.length;
  }

  /** The smallest key, or +Infinity when empty. */
  peekKey(): number {
    return this.keys.length > 0 ? this.keys[0]! : Number.POSITIVE_INFINITY;
  }

  push(key: number, item: T): void {
    const keys = this.keys;
    const items = this.items;
    let i = keys.length;
    keys.push(key);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    keys[i] = key;
    items[i] = item;
  }

  /** Removes and returns the item with the smallest key (undefined when empty). */
  pop(): T | undefined {
    const keys = this.keys;
    const items = this.items;
    if (keys.length === 0) return undefined;
    const top = items[0];
    const lastKey = keys.pop()!;
    const lastItem = items.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && keys[child + 1]! < keys[child]!) child++;
        if (keys[child]! >= lastKey) break;
        keys[i] = keys[child]!;
        items[i] = items[child]!;
        i = child;
      }
      keys[i] = lastKey;
      items[i] = lastItem;
    }
    return top;
  }

  clear(): void {
    this.keys = [];
    this.items = [];
  }
}
