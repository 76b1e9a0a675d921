/**
 * Manage the test services by hand (tests start them on demand; this is for warming up and cleaning up).
 *   npx tsx scripts/services.ts status | start | images | stop | prune
 *     start   dockerd + both registries        images  start + all base images (incl. debian-node)
 *     stop    stop services started by tests   prune   remove unused dockerd images and build cache
 */
import { ensureBusyboxImage, ensureDebianImage, ensureDebianNodeImage } from "../test/support/base-images.js";
import { docker } from "../test/support/docker.js";
import { ensureDockerd, ensureRegistry, runningServices, stopServices } from "../test/support/services.js";

async function main(cmd: string): Promise<void> {
  const t0 = Date.now();
  const step = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
    const s = Date.now();
    const out = await fn();
    console.log(`${label}: ${typeof out === "string" ? out : JSON.stringify(out)} (${((Date.now() - s) / 1000).toFixed(1)}s)`);
  };
  switch (cmd) {
    case "status":
      console.log(await runningServices());
      return;
    case "images":
    case "start":
      await step("dockerd", ensureDockerd);
      await step("registry", ensureRegistry);
      await step("registry (htpasswd)", () => ensureRegistry({ auth: "htpasswd" }));
      if (cmd === "images") {
        await step("busybox", ensureBusyboxImage);
        await step("debian", ensureDebianImage);
        await step("debian-node", ensureDebianNodeImage);
      }
      console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      return;
    case "stop":
      await stopServices(["dockerd", "registry", "registry-auth"]);
      return;
    case "prune":
      console.log(await docker(["image", "prune", "-f"]));
      console.log(await docker(["builder", "prune", "-f"]));
      return;
    default:
      throw new Error(`unknown command "${cmd}" (status | start | images | stop | prune)`);
  }
}

main(process.argv[2] ?? "status").catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
