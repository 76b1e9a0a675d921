/**
 * vitest globalSetup. Services start lazily (only tests that need dockerd or the registry pay for them).
 * At teardown the run stops whatever it started, unless KILN_TEST_KEEP_SERVICES=1 (handy on a dev
 * machine: the next run starts instantly).
 *
 * Several vitest runs may share the services (parallel runs on one machine). Each run holds a lease
 * file; a run that finishes while others still hold leases hands its services over instead of killing
 * them under the others, and the last run to leave stops everything handed over to it.
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { withLock } from "./lock.js";
import { stateDir } from "./paths.js";
import { isAlive } from "./process.js";
import { runningServices, stopServices, type ServiceName } from "./services.js";

const leaseDir = (): string => path.join(stateDir(), "leases");
const handoverFile = (): string => path.join(stateDir(), "stop-on-last-exit.json");

type Pids = Partial<Record<ServiceName, number>>;

async function otherLiveLeases(): Promise<number[]> {
  const names = await readdir(leaseDir()).catch(() => [] as string[]);
  return names.map(Number).filter((pid) => pid !== process.pid && Number.isFinite(pid) && isAlive(pid));
}

export default async function setup(): Promise<() => Promise<void>> {
  await mkdir(leaseDir(), { recursive: true });
  // Forget leases of runs that died without a teardown (killed CI jobs), so they cannot pin services.
  for (const name of await readdir(leaseDir())) {
    if (!isAlive(Number(name))) await rm(path.join(leaseDir(), name), { force: true });
  }
  await writeFile(path.join(leaseDir(), String(process.pid)), "");
  const before = await runningServices();

  return async () => {
    await withLock("teardown", async () => {
      await rm(path.join(leaseDir(), String(process.pid)), { force: true });
      if (process.env.KILN_TEST_KEEP_SERVICES === "1") return;
      const now = await runningServices();
      const handed = JSON.parse(await readFile(handoverFile(), "utf8").catch(() => "{}")) as Pids;
      const toStop: Pids = {};
      for (const name of Object.keys(now) as ServiceName[]) {
        // Ours if it started during this run, or an earlier run handed this very process over.
        if (now[name] !== before[name] || handed[name] === now[name]) toStop[name] = now[name];
      }
      if ((await otherLiveLeases()).length > 0) {
        await writeFile(handoverFile(), JSON.stringify({ ...handed, ...toStop }));
        return;
      }
      await stopServices(Object.keys(toStop) as ServiceName[]);
      await rm(handoverFile(), { force: true });
    });
  };
}
