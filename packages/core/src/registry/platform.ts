// Platform matching for manifest lists, following containerd's platforms package: architectures and
// variants are normalised (aarch64 → arm64, arm64 without variant → v8, arm → v7), an arm/vN request
// also accepts older arm variants, and the first best match in index order wins.
import type { Descriptor, Platform } from "../image/oci.js";

const ARCH_ALIASES: Record<string, string> = { x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64", i386: "386", armhf: "arm", armel: "arm" };

/** Normalises a platform the way containerd's platforms.Normalize does. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? "";
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (p.architecture.toLowerCase() === "armhf") variant ||= "v7";
  if (p.architecture.toLowerCase() === "armel") variant ||= "v6";
  if (architecture === "arm64") {
    if (variant === "" || variant === "8" || variant === "v8.0") variant = "v8";
  } else if (architecture === "arm") {
    if (variant === "" || variant === "7") variant = "v7";
    else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
  } else if (architecture === "amd64" && variant === "v1") {
    variant = "";
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p["os.version"]) out["os.version"] = p["os.version"];
  return out;
}

function variantRank(v: string | undefined): number {
  const m = /^v(\d+)$/.exec(v ?? "");
  return m?.[1] ? Number(m[1]) : 0;
}

/**
 * How well `candidate` serves a `wanted` image: undefined for no match, else lower is better
 * (0 = exact). arm/v7 also runs v6 and v5 images, amd64/v3 runs v2 and v1 images.
 */
export function platformScore(wanted: Platform, candidate: Platform): number | undefined {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return undefined;
  if ((w.variant ?? "") === (c.variant ?? "")) return 0;
  if (w.architecture === "arm" || w.architecture === "amd64") {
    const wr = variantRank(w.variant);
    const cr = variantRank(c.variant);
    if (cr <= wr) return wr - cr;
  }
  return undefined;
}

/** The best manifest of an index for `wanted`, or undefined. Entries without a platform never match. */
export function selectManifest(manifests: readonly Descriptor[], wanted: Platform): Descriptor | undefined {
  let best: { d: Descriptor; score: number } | undefined;
  for (const d of manifests) {
    if (!d.platform) continue;
    const score = platformScore(wanted, d.platform);
    if (score !== undefined && (best === undefined || score < best.score)) best = { d, score };
  }
  return best?.d;
}
