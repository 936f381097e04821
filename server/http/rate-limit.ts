// Token buckets keyed by a string (a client address, a link). A bucket holds at most `burst`
// tokens and refills at `ratePerSecond`; a request takes one. An empty bucket answers how long
// until the next token, which becomes `Retry-After` (RFC 9110 §10.2.3) on a 429.
//
// Written here rather than taken from a library: the semantics needed are exactly these ~60 lines
// (burst + sustained rate, a precise Retry-After, a bounded number of keys, a clock tests can
// drive), state is per process like the tus locker, and the candidates either count fixed windows
// (a leaked link could send 2× the limit across a window edge) or bring a store abstraction this
// single-process server does not need.

export interface BucketLimit {
  ratePerSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limit: BucketLimit,
    private readonly now: () => number = Date.now,
    /** Beyond this many keys, full buckets (and then the oldest) are forgotten. */
    private readonly maxKeys = 100_000,
  ) {}

  get enabled(): boolean {
    return this.limit.ratePerSecond > 0;
  }

  /** Takes a token: 0 when allowed, otherwise the whole seconds to wait (at least 1). */
  take(key: string): number {
    if (!this.enabled) return 0;
    const bucket = this.refill(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return this.wait(bucket);
  }

  /** Like take, without taking: whether a request may proceed now. */
  peek(key: string): number {
    if (!this.enabled) return 0;
    const bucket = this.buckets.get(key);
    return bucket === undefined ? 0 : this.wait(this.refill(key));
  }

  get size(): number {
    return this.buckets.size;
  }

  private wait(bucket: Bucket): number {
    return bucket.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / this.limit.ratePerSecond));
  }

  private refill(key: string): Bucket {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      bucket = { tokens: this.limit.burst, updatedAt: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    const elapsed = Math.max(0, now - bucket.updatedAt) / 1000;
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + elapsed * this.limit.ratePerSecond);
    bucket.updatedAt = now;
    return bucket;
  }

  /** A full bucket carries no state worth keeping; if none is full, the oldest keys go first. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) {
      const tokens = bucket.tokens + (Math.max(0, now - bucket.updatedAt) / 1000) * this.limit.ratePerSecond;
      if (tokens >= this.limit.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
