// A push-to-pull bridge: the engine pushes events, a library user iterates them at its own pace.

export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiters: ((r: IteratorResult<T>) => void)[] = [];
  private closed = false;
  private readonly listeners: ((item: T) => void)[] = [];
  /** Items are kept for iteration only once someone iterates, so listeners alone cost no memory. */
  private buffering = false;

  push(item: T): void {
    for (const l of this.listeners) l(item);
    if (this.closed) return;
    const waiter = this.waiters.shift();
    if (waiter) waiter({ value: item, done: false });
    else if (this.buffering) this.items.push(item);
  }

  /** Synchronous listener, for consumers that must see events as they happen (progress, logs). */
  listen(fn: (item: T) => void): void {
    this.listeners.push(fn);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) w({ value: undefined as never, done: true });
    this.waiters = [];
  }

  /** Starts keeping items for iteration (call before the producer starts to miss nothing). */
  startBuffering(): void {
    this.buffering = true;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    this.buffering = true;
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.closed) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
    };
  }
}
