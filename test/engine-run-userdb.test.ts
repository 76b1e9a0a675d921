// RUN resolves USER from the image's /etc/passwd and /etc/group; RUN layers that leave /etc alone are
// skipped for that lookup. These builds check that every change that matters is still seen.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build, openStore, type BuildEvent, type KilnStore } from "@kiln/core";
import { requireTool } from "./support/tools.js";

const PRELUDE = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc && echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd && echo "root:x:0:" > /etc/group
`;

let work: string;
let store: KilnStore;
let n = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-run-userdb-"));
  store = await openStore(path.join(work, "store"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function idsSeen(dockerfile: string): Promise<string[]> {
  const dir = path.join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "Dockerfile"), dockerfile);
  await copyFile(requireTool("busybox"), path.join(dir, "busybox"));
  const r = build({ context: dir, store, noCache: true });
  const logs: string[] = [];
  r.onEvent((e: BuildEvent) => {
    if (e.type === "step-log") logs.push(e.data);
  });
  await r.result;
  return logs.join("").split("\n").filter((l) => l.startsWith("ids "));
}

describe("RUN user lookup across steps", () => {
  it("sees a user added after RUNs that did not touch /etc", async () => {
    const seen = await idsSeen(
      `${PRELUDE}RUN echo a > /a
RUN echo b > /b
RUN echo "bob:x:1234:1234::/home/bob:/bin/sh" >> /etc/passwd && echo "bob:x:1234:" >> /etc/group && echo "extra:x:77:bob" >> /etc/group
RUN echo c > /c
USER bob
RUN echo "ids $(id -u) $(id -g) $(id -G)"
RUN true
RUN echo "ids $(id -u) $(id -g) $(id -G)"
`,
    );
    expect(seen).toEqual(["ids 1234 1234 1234 77", "ids 1234 1234 1234 77"]);
  });

  it("sees a changed user database behind a symlinked /etc/passwd", async () => {
    const seen = await idsSeen(
      `${PRELUDE}RUN mkdir /data && cp /etc/passwd /data/passwd && rm /etc/passwd && ln -s /data/passwd /etc/passwd
RUN echo "eve:x:4321:0::/:/bin/sh" >> /data/passwd
USER eve
RUN echo "ids $(id -u) $(id -g)"
`,
    );
    expect(seen).toEqual(["ids 4321 0"]);
  });

  it("sees a rewritten /etc/passwd after an unrelated RUN", async () => {
    const seen = await idsSeen(
      `${PRELUDE}RUN echo "amy:x:555:555::/:/bin/sh" >> /etc/passwd
RUN echo x > /x
RUN echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd && echo "amy:x:556:0::/:/bin/sh" >> /etc/passwd
USER amy
RUN echo "ids $(id -u) $(id -g)"
`,
    );
    expect(seen).toEqual(["ids 556 0"]);
  });
});
