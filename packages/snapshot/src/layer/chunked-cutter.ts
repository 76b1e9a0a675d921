/**
 * Splits the deterministic layer tar stream into member-sized runs of bytes. It parses the headers the
 * tar writer produced (rather than re-encoding them) so the concatenated runs are, by construction,
 * exactly `writeLayerTar`'s bytes.
 *
 * Cut policy — boundaries depend only on each entry's own path and size (plus a small min/max guard), so
 * an edited, inserted or removed file moves at most the boundaries next to it and every other run of
 * files lines up with the previous build's members:
 *  - after a small entry of tar weight w (header + content + padding), cut when
 *    hash(path) < w / chunkBytes (as a fraction of 2^32) and the member holds ≥ chunkBytes/8, or
 *    unconditionally once it holds ≥ 4 × chunkBytes. The expected member is ~chunkBytes.
 *  - a file whose content exceeds chunkBytes gets members of its own: cut before its header, inside its
 *    content at every multiple of chunkBytes (content offsets, so an unchanged tail still lines up) and
 *    after its padding.
 *  - the end-of-archive blocks join the last member.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { BadTarError } from "./errors.js";
import type { ChunkEntryRef } from "./chunked-index.js";
import { BLOCK, decodeHeader, decodePaxData, isZeroBlock, paddingFor } from "./tar-format.js";
import type { Digest } from "./types.js";

/** A finished run of uncompressed tar bytes, gathered into one buffer (hashed and deflated whole). */
export interface RawMember {
  offset: number;
  length: number;
  data: Buffer;
  digest: Digest;
  entries: ChunkEntryRef[];
}

type State = "header" | "pax" | "content" | "trailer";

export class TarMemberCutter {
  readonly #chunkBytes: number;
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #fingerprint: (tarPath: string) => string | undefined;
  readonly #ready: RawMember[] = [];

  #state: State = "header";
  /** Bytes of the current header group (PAX header + data + ustar header) collected so far. */
  #group: Buffer[] = [];
  #groupBytes = 0;
  /** Bytes still wanted to finish the current block/PAX data/content. */
  #want = BLOCK;
  #pax: Map<string, Buffer> | undefined;
  #paxSize = 0;

  // Current entry's content.
  #entry: ChunkEntryRef | undefined;
  #contentTotal = 0; // content + padding
  #contentPos = 0;
  #big = false;
  #weight = 0;

  // Current member.
  #offset = 0;
  #chunks: Buffer[] = [];
  #length = 0;
  #entries: ChunkEntryRef[] = [];

  constructor(chunkBytes: number, fingerprint: (tarPath: string) => string | undefined) {
    this.#chunkBytes = chunkBytes;
    this.#minBytes = Math.floor(chunkBytes / 8);
    this.#maxBytes = chunkBytes * 4;
    this.#fingerprint = fingerprint;
  }

  /** Members completed so far; the caller drains this array. */
  get ready(): RawMember[] {
    return this.#ready;
  }

  /** Uncompressed bytes of the member being cut (not yet in `ready`). */
  get pendingBytes(): number {
    return this.#length + this.#ready.reduce((n, m) => n + m.length, 0);
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      let n = Math.min(this.#want, chunk.length - pos);
      // Big files are cut at fixed content offsets, so never read past the next one in a single step.
      if (this.#state === "content" && this.#big) n = Math.min(n, this.#chunkBytes - (this.#contentPos % this.#chunkBytes));
      const piece = chunk.subarray(pos, pos + n);
      pos += n;
      this.#want -= n;
      switch (this.#state) {
        case "trailer":
          this.#append(piece);
          this.#want = Number.POSITIVE_INFINITY;
          break;
        case "content":
          this.#append(piece);
          this.#contentPos += n;
          if (this.#want === 0) this.#endEntry();
          else if (this.#big && this.#contentPos % this.#chunkBytes === 0) this.#cut();
          break;
        default:
          this.#group.push(piece);
          this.#groupBytes += n;
          if (this.#want === 0) this.#groupStep();
      }
    }
  }

  /** Flushes the last member; the stream must have ended with the end-of-archive blocks. */
  end(): void {
    if (this.#state !== "trailer") throw new BadTarError("tar stream ended without the end-of-archive blocks");
    this.#cut();
  }

  #groupStep(): void {
    if (this.#state === "pax") {
      // The PAX data (and padding) is complete; the real header follows.
      const all = Buffer.concat(this.#group);
      this.#group = [all];
      const data = all.subarray(this.#groupBytes - this.#paxDataLength());
      this.#pax = decodePaxData(data.subarray(0, this.#paxSize));
      this.#state = "header";
      this.#want = BLOCK;
      return;
    }
    const block = this.#lastBlock();
    if (this.#groupBytes === BLOCK && isZeroBlock(block)) {
      this.#state = "trailer";
      this.#append(this.#takeGroup());
      this.#want = Number.POSITIVE_INFINITY;
      return;
    }
    const h = decodeHeader(block);
    if (h.typeflag === "x") {
      this.#paxSize = h.size;
      this.#state = "pax";
      this.#want = h.size + paddingFor(h.size);
      if (this.#want === 0) this.#groupStep();
      return;
    }
    const pax = this.#pax;
    this.#pax = undefined;
    const path = pax?.get("path")?.toString("utf8") ?? h.name;
    const sizeText = pax?.get("size")?.toString("ascii");
    const size = h.typeflag === "0" ? (sizeText !== undefined ? Number(sizeText) : h.size) : 0;
    // The layer writer gives content only to regular files; anything else means the stream is not its output.
    if (h.typeflag !== "0" && h.size !== 0) throw new BadTarError(`unexpected content on a ${JSON.stringify(h.typeflag)} entry`, path);
    if (!Number.isSafeInteger(size) || size < 0) throw new BadTarError("invalid size", path);
    const header = this.#takeGroup();
    const ref: ChunkEntryRef = { path, header: sha256Hex(header) };
    const fp = this.#fingerprint(path);
    if (fp !== undefined) ref.fingerprint = fp;

    this.#big = size > this.#chunkBytes;
    if (this.#big && this.#length > 0) this.#cut();
    this.#entries.push(ref);
    this.#append(header);
    this.#entry = ref;
    this.#contentTotal = size + paddingFor(size);
    this.#contentPos = 0;
    this.#weight = header.length + this.#contentTotal;
    if (this.#contentTotal === 0) {
      this.#endEntry();
    } else {
      this.#state = "content";
      this.#want = this.#contentTotal;
    }
  }

  #paxDataLength(): number {
    return this.#paxSize + paddingFor(this.#paxSize);
  }

  #lastBlock(): Buffer {
    const all = this.#group.length === 1 ? this.#group[0]! : Buffer.concat(this.#group);
    this.#group = [all];
    return all.subarray(all.length - BLOCK);
  }

  #takeGroup(): Buffer {
    const all = this.#group.length === 1 ? this.#group[0]! : Buffer.concat(this.#group);
    this.#group = [];
    this.#groupBytes = 0;
    return all;
  }

  #endEntry(): void {
    this.#state = "header";
    this.#want = BLOCK;
    this.#entry = undefined;
    if (this.#big) {
      this.#cut();
      return;
    }
    if (this.#length >= this.#maxBytes) {
      this.#cut();
      return;
    }
    if (this.#length < this.#minBytes) return;
    const ref = this.#entries[this.#entries.length - 1];
    if (ref && cutPoint(ref.path) < this.#weight / this.#chunkBytes) this.#cut();
  }

  #append(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.#length === 0 && this.#entry && this.#contentPos > 0 && this.#entries.length === 0) {
      // A member starting inside a big file's content records where.
      this.#entries.push({ ...this.#entry, contentOffset: this.#contentPos });
    }
    this.#chunks.push(piece);
    this.#length += piece.length;
  }

  #cut(): void {
    if (this.#length === 0) return;
    // One copy into a member buffer is cheaper than thousands of small hash updates, and deflate wants it whole.
    const data = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length);
    this.#ready.push({
      offset: this.#offset,
      length: this.#length,
      data,
      digest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
      entries: this.#entries,
    });
    this.#offset += this.#length;
    this.#chunks = [];
    this.#length = 0;
    this.#entries = [];
  }
}

/** A uniform value in [0, 1) derived from the path alone. */
function cutPoint(path: string): number {
  return parseInt(sha256Hex(path).slice(0, 8), 16) / 2 ** 32;
}

/** One-shot crypto.hash (Node ≥ 20.12) is much cheaper than a Hash object for the many tiny inputs here. */
const sha256Hex: (data: string | Buffer) => string =
  typeof crypto.hash === "function"
    ? (data) => crypto.hash("sha256", data)
    : (data) => createHash("sha256").update(data).digest("hex");
