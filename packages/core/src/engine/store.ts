// The local store a build works in: blobs, the cache index, tags, and the build history.
import { BlobStore, BuildHistory, CacheIndex, TagStore, defaultStoreRoot } from "@kiln/cache";

export interface KilnStore {
  root: string;
  blobs: BlobStore;
  cache: CacheIndex;
  tags: TagStore;
  history: BuildHistory;
}

const opened = new Map<string, Promise<KilnStore>>();

/** Opens (creating if needed) the store at `root` (default: $KILN_STORE, $XDG_CACHE_HOME/kiln, ~/.cache/kiln). */
export function openStore(root: string = defaultStoreRoot()): Promise<KilnStore> {
  let store = opened.get(root);
  if (!store) {
    store = (async () => {
      const blobs = await BlobStore.open(root);
      const [cache, tags, history] = await Promise.all([CacheIndex.open(blobs), TagStore.open(blobs), BuildHistory.open(blobs)]);
      return { root: blobs.root, blobs, cache, tags, history };
    })();
    store.catch(() => opened.delete(root));
    opened.set(root, store);
  }
  return store;
}
