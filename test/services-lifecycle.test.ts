/**
 * Service lifetime across vitest runs (the globalSetup teardown), on a private dockerd with its own
 * state and data dirs so the shared test services are left alone.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import setup from "./support/global-setup.js";
import { isAlive } from "./support/process.js";
import { ensureDockerd, runningServices, stopServices } from "./support/services.js";

let root: string;
const saved = { state: process.env.KILN_TEST_STATE, data: process.env.KILN_TEST_DATA };

beforeAll(async () => {
  // Short path: the state dir holds unix sockets (108-byte limit).
  root = await mkdtemp(path.join(os.tmpdir(), "kl-"));
  process.env.KILN_TEST_STATE = path.join(root, "s");
  process.env.KILN_TEST_DATA = path.join(root, "d");
});

afterAll(async () => {
  await stopServices(["dockerd"]);
  process.env.KILN_TEST_STATE = saved.state;
  process.env.KILN_TEST_DATA = saved.data;
  if (saved.state === undefined) delete process.env.KILN_TEST_STATE;
  if (saved.data === undefined) delete process.env.KILN_TEST_DATA;
  await rm(root, { recursive: true, force: true });
});

it("a run that started dockerd hands it over while another run is active; the last run stops it", async () => {
  const teardownA = await setup();
  const { pid } = await ensureDockerd();
  // Run B starts after dockerd is up, so it would not stop dockerd on its own account.
  const teardownB = await setup();
  // A third run, alive for now, holding its lease.
  const other = spawn("sleep", ["600"], { stdio: "ignore" });
  await writeFile(path.join(process.env.KILN_TEST_STATE!, "leases", String(other.pid)), "");

  await teardownA();
  expect((await runningServices()).dockerd).toBe(pid);

  other.kill();
  await new Promise((resolve) => other.once("exit", resolve));
  await teardownB(); // the last one out: stops what A handed over
  expect(await runningServices()).toEqual({});
  expect(isAlive(pid)).toBe(false);
});

it("a second ensureDockerd reuses the daemon started by the first", async () => {
  const a = await ensureDockerd();
  const b = await ensureDockerd();
  expect(b.pid).toBe(a.pid);
  expect(a.dataRoot).toBe(path.join(root, "d", "docker"));
});
