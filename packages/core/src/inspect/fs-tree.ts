// The merged filesystem of an image as layers are applied, tracking which layer shipped each file so
// that bytes hidden by later layers (overwritten or deleted) can be attributed to the layer that pays them.

export interface FileVersion {
  path: string;
  /** Docker's byte count for the entry (a regular file's size, else 0). */
  size: number;
  /** Layer that shipped this version. */
  layer: number;
}

interface Node {
  children?: Map<string, Node>;
  /** Set for non-directories. */
  file?: FileVersion;
  /** Layer that last declared this directory (or created it implicitly). */
  dirLayer: number;
}

/** Files a change hid from the merged view. */
export type Hidden = FileVersion[];

export class MergedTree {
  readonly #root: Node = { children: new Map(), dirLayer: -1 };

  /** Walks to `path`'s parent, creating directories (and replacing files in the way, which hides them). */
  #parent(parts: string[], layer: number, hidden: Hidden): Node {
    let node = this.#root;
    for (const part of parts.slice(0, -1)) {
      let next = node.children!.get(part);
      if (!next || !next.children) {
        if (next?.file) hidden.push(next.file);
        next = { children: new Map(), dirLayer: layer };
        node.children!.set(part, next);
      }
      node = next;
    }
    return node;
  }

  #lookup(parts: string[]): Node | undefined {
    let node: Node | undefined = this.#root;
    for (const part of parts) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  /** Every file at or below `node`. */
  #collect(node: Node, out: Hidden): void {
    if (node.file) out.push(node.file);
    for (const child of node.children?.values() ?? []) this.#collect(child, out);
  }

  /**
   * Applies a non-directory entry. Returns the version it replaced at the same path (if any) and the files
   * it hid (a replaced file from a lower layer, or a whole directory subtree replaced by a file).
   */
  putFile(path: string, version: FileVersion): { previous?: FileVersion; hidden: Hidden } {
    const parts = path.split("/");
    const hidden: Hidden = [];
    const parent = this.#parent(parts, version.layer, hidden);
    const name = parts.at(-1)!;
    const existing = parent.children!.get(name);
    let previous: FileVersion | undefined;
    if (existing?.file) previous = existing.file;
    else if (existing) this.#collect(existing, hidden);
    parent.children!.set(name, { file: version, dirLayer: version.layer });
    return previous ? { previous, hidden } : { hidden };
  }

  /** Applies a directory entry; a file in its place is hidden. */
  putDir(path: string, layer: number): Hidden {
    const parts = path.split("/");
    const hidden: Hidden = [];
    const parent = this.#parent(parts, layer, hidden);
    const name = parts.at(-1)!;
    const existing = parent.children!.get(name);
    if (existing?.children) existing.dirLayer = layer;
    else {
      if (existing?.file) hidden.push(existing.file);
      parent.children!.set(name, { children: new Map(), dirLayer: layer });
    }
    return hidden;
  }

  /** A whiteout: removes `path` and everything below it. */
  remove(path: string): Hidden {
    const parts = path.split("/");
    const parent = this.#lookup(parts.slice(0, -1));
    const name = parts.at(-1)!;
    const node = parent?.children?.get(name);
    if (!parent || !node) return [];
    const out: Hidden = [];
    this.#collect(node, out);
    parent.children!.delete(name);
    return out;
  }

  /** An opaque whiteout: removes what lower layers put below `dir`, keeping what layer `layer` itself added. */
  clearBelow(dir: string, layer: number): Hidden {
    const node = dir === "" ? this.#root : this.#lookup(dir.split("/"));
    const out: Hidden = [];
    if (!node?.children) return out;
    const prune = (n: Node): void => {
      for (const [name, child] of n.children!) {
        if (child.file) {
          if (child.file.layer < layer) {
            out.push(child.file);
            n.children!.delete(name);
          }
        } else if (child.children) {
          prune(child);
          if (child.children.size === 0 && child.dirLayer < layer) n.children!.delete(name);
        }
      }
    };
    prune(node);
    return out;
  }

  /** All files of the merged view with their paths. */
  *files(): Generator<{ path: string; version: FileVersion }> {
    const stack: [string, Node][] = [["", this.#root]];
    while (stack.length > 0) {
      const [prefix, node] = stack.pop()!;
      for (const [name, child] of node.children ?? []) {
        const p = prefix === "" ? name : `${prefix}/${name}`;
        if (child.file) yield { path: p, version: child.file };
        else stack.push([p, child]);
      }
    }
  }
}
