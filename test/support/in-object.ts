import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { DurableObjectCheckpointStore, type CheckpointStore } from "../../src/index.js";

// A Durable Object's storage can only be used inside that object, so the
// suites reach the Durable Object store through runInDurableObject: every
// call (and every step of a listing) runs inside the object.

/** A fresh test object (its own SQLite database). */
export function freshObject(): DurableObjectStub {
  return env.CHECKPOINT_OBJECTS.get(env.CHECKPOINT_OBJECTS.newUniqueId());
}

/** Runs `use` inside `stub`'s object with a store on its storage. */
export function inObject<R>(stub: DurableObjectStub, use: (store: DurableObjectCheckpointStore, storage: DurableObjectStorage) => R | Promise<R>): Promise<R> {
  return runInDurableObject(stub, (_instance, state) => use(new DurableObjectCheckpointStore(state.storage), state.storage));
}

/** An iterator whose every step runs inside the object. */
function stepInside<T>(stub: DurableObjectStub, open: (store: DurableObjectCheckpointStore) => AsyncIterableIterator<T>): AsyncIterableIterator<T> {
  let inner: AsyncIterableIterator<T> | undefined;
  const iterator: AsyncIterableIterator<T> = {
    next: () => inObject(stub, (store) => (inner ??= open(store)).next()),
    return: (value?: unknown) => inObject(stub, async (store) => (await (inner ??= open(store)).return?.(value)) ?? { done: true, value: undefined }),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** The Durable Object store of `stub`'s object, as a {@link CheckpointStore} usable from the test. */
export function objectStore(stub: DurableObjectStub = freshObject()): CheckpointStore {
  return {
    save: (name, position, options) => inObject(stub, (store) => store.save(name, position, options)),
    load: (name, options) => inObject(stub, (store) => store.load(name, options)),
    reset: (name, options) => inObject(stub, (store) => store.reset(name, options)),
    names: (options) => stepInside(stub, (store) => store.names(options)),
    entries: (options) => stepInside(stub, (store) => store.entries(options)),
  };
}
