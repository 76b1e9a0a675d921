/**
 * Read access to image archives without extracting them: a `docker save` tar, an OCI image layout
 * directory, or an OCI layout tar. Tar archives are indexed once (headers only) and members are then
 * read by byte range.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ImageFormatError } from "./errors.js";
import { readTar, type TarHeader } from "./tar.js";

/** Files of an archive, addressed by their path inside it ("index.json", "blobs/sha256/…"). */
export interface ArchiveFiles {
  has(name: string): Promise<boolean>;
  readBuffer(name: string): Promise<Buffer>;
  open(name: string): AsyncIterable<Buffer>;
  size(name: string): Promise<number>;
}

class DirFiles implements ArchiveFiles {
  constructor(private readonly root: string) {}
  private resolve(name: string): string {
    const p = path.resolve(this.root, name);
    if (!p.startsWith(path.resolve(this.root) + path.sep)) throw new ImageFormatError(`path escapes archive: ${name}`);
    return p;
  }
  async has(name: string): Promise<boolean> {
    return (await stat(this.resolve(name)).catch(() => undefined))?.isFile() ?? false;
  }
  readBuffer(name: string): Promise<Buffer> {
    return readFile(this.resolve(name));
  }
  open(name: string): AsyncIterable<Buffer> {
    return createReadStream(this.resolve(name));
  }
  async size(name: string): Promise<number> {
    return (await stat(this.resolve(name))).size;
  }
}

const normalize = (p: string): string => path.posix.normalize(p.replace(/^\.?\/+/, "")).replace(/\/$/, "");

class TarFiles implements ArchiveFiles {
  private constructor(
    private readonly file: string,
    private readonly index: Map<string, TarHeader>,
  ) {}

  static async load(file: string): Promise<TarFiles> {
    const index = new Map<string, TarHeader>();
    for await (const { header } of readTar(createReadStream(file))) index.set(normalize(header.path), header);
    return new TarFiles(file, index);
  }

  /** Follow symlinks and hardlinks inside the archive (docker save links duplicate layers). */
  private entry(name: string): TarHeader {
    let key = normalize(name);
    for (let hops = 0; hops < 16; hops++) {
      const h = this.index.get(key);
      if (!h) break;
      if (h.type === "file") return h;
      if (h.type === "hardlink") key = normalize(h.linkname);
      else if (h.type === "symlink") key = normalize(path.posix.join(path.posix.dirname(key), h.linkname));
      else break;
    }
    throw new ImageFormatError(`archive ${this.file} has no file ${name}`);
  }
  async has(name: string): Promise<boolean> {
    try {
      this.entry(name);
      return true;
    } catch {
      return false;
    }
  }
  async readBuffer(name: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.open(name)) chunks.push(c);
    return Buffer.concat(chunks);
  }
  open(name: string): AsyncIterable<Buffer> {
    const h = this.entry(name);
    if (h.size === 0) return (async function* () {})();
    return createReadStream(this.file, { start: h.dataOffset, end: h.dataOffset + h.size - 1 });
  }
  async size(name: string): Promise<number> {
    return this.entry(name).size;
  }
}

/** Open a directory or a tar file as an archive. */
export async function openArchive(p: string): Promise<ArchiveFiles> {
  const st = await stat(p);
  return st.isDirectory() ? new DirFiles(p) : TarFiles.load(p);
}
