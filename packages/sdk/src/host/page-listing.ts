/**
 * A listing the host fetches one page per call (ListSnapshots), presented like ListObjects: an
 * async iterable of pages that follows the page tokens. It is also the promise of its first page,
 * the form `listSnapshots` had before (deprecated).
 */
import { Code, StowageError } from "../errors.js";

/**
 * Pages of a listing: iterate it with `for await`, like `listObjects`. It starts at the input's
 * `pageToken` and stops after the last page or after `maxPages` pages.
 *
 * Awaiting it directly yields the first page only: that form is deprecated, kept for callers
 * written when `listSnapshots` returned one page.
 *
 * @typeParam P - The page type (`ListSnapshotsPage`).
 */
export class PageListing<
  P extends {
    /** Token of the next page; empty on the last. */
    readonly nextPageToken: string;
  },
> extends Promise<P> implements AsyncIterable<P> {
  /** Promise methods (then, catch, finally) return plain promises, not listings. */
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  readonly #fetch: (pageToken: string) => Promise<P>;
  readonly #maxPages: number;

  /**
   * @param fetch - Fetches the page that `pageToken` names ("" for the first).
   * @param pageToken - Where the listing starts.
   * @param maxPages - Pages to yield at most; 0 or absent: all.
   * @internal Listings are made by the host's clients.
   */
  constructor(fetch: (pageToken: string) => Promise<P>, pageToken = "", maxPages = 0) {
    // The first page is fetched at once, as the one-page form always did.
    super((resolve, reject) => {
      fetch(pageToken).then(resolve, reject);
    });
    this.#fetch = fetch;
    this.#maxPages = maxPages;
  }

  /** The pages, from the first. */
  async *[Symbol.asyncIterator](): AsyncGenerator<P, void, undefined> {
    const fetch = this.#fetch;
    let page: P = await this;
    let pages = 1;
    for (;;) {
      yield page;
      const token = page.nextPageToken;
      if (token === "" || (this.#maxPages > 0 && pages >= this.#maxPages)) return;
      page = await fetch(token);
      pages++;
      if (page.nextPageToken === token) {
        throw new StowageError(Code.Internal, "the plugin returned the page token it was given, so the listing would never end");
      }
    }
  }
}
