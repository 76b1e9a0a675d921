// Properties of the checker: arbitrary Dockerfiles assembled from real and odd lines either
// check cleanly or fail with DockerfileError, and the shell splitter round-trips simple scripts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkDockerfile } from "../src/check/index.js";
import { splitShellCommands } from "../src/check/shell-commands.js";
import { DockerfileError } from "../src/dockerfile/errors.js";

const LINES = [
  "FROM alpine", "FROM scratch AS Base", "from node:20 as build", "FROM --platform=$BUILDPLATFORM golang AS b",
  "FROM $IMG", "FROM base", "ARG IMG=alpine", "ARG TOKEN", "ARG V=${X:-1}", "ENV A 1", "ENV PATH=$PATH:/x",
  "ENV B=${A:?bad}", "COPY . .", "COPY --from=b /out /out", "COPY $SRC /dst", "ADD a.tar.gz /", "ADD src /src",
  "ADD https://example.com/x /x", "RUN npm ci", "RUN apt-get update", "RUN apt-get clean",
  "RUN echo 'unterminated", 'RUN ["sh", "-c", "pip install -r r.txt"]', "RUN <<EOF\napt-get update\nEOF",
  "CMD echo hi", 'CMD ["a"]', "ENTRYPOINT x", "HEALTHCHECK NONE", "WORKDIR app", "WORKDIR $HOME",
  "EXPOSE 80/TCP 1.2.3.4:80:80", "EXPOSE $PORT", "MAINTAINER me", "LABEL a b", "SHELL [\"bash\", \"-c\"]",
  "ONBUILD RUN npm ci", "USER $U", "VOLUME /data", "STOPSIGNAL SIGTERM", "# check=skip=all", "# a comment",
  "RUN echo a \\\n\n  b", "RUN --mount=type=cache,target=$D npm ci", "COPY --chown=$U:$G . /app",
];

describe("checkDockerfile on assembled Dockerfiles", () => {
  it("returns findings or throws DockerfileError, nothing else", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...LINES), { minLength: 1, maxLength: 12 }), fc.boolean(), (lines, directive) => {
        const source = `${directive ? "# check=error=true\n" : ""}${lines.join("\n")}\n`;
        try {
          const { findings } = checkDockerfile(source, { file: "Dockerfile", ignorePatterns: ["src"] });
          for (const f of findings) {
            expect(f.severity).toBe(directive ? "error" : "warning");
            expect(f.range.startLine).toBeGreaterThan(0);
          }
        } catch (err) {
          if (!(err instanceof DockerfileError)) throw err;
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe("splitShellCommands", () => {
  it("gives back the commands of a script joined with operators", () => {
    const word = fc.stringMatching(/^[a-z0-9._\/=-]{1,8}$/);
    const command = fc.array(word, { minLength: 1, maxLength: 4 });
    const operator = fc.constantFrom(" && ", " || ", "; ", " | ", "\n", " \\\n && ");
    fc.assert(
      fc.property(fc.array(fc.tuple(command, operator), { minLength: 1, maxLength: 5 }), (parts) => {
        const script = parts.map(([c, op], i) => (i === 0 ? "" : op) + c.join(" ")).join("");
        const reserved = new Set(["!", "{", "}", "then", "do", "else", "elif", "if", "while", "until", "time"]);
        const expected = parts.map(([c]) => {
          let i = 0;
          while (i < c.length && reserved.has(c[i] as string)) i++;
          return c.slice(i);
        }).filter((c) => c.length > 0);
        expect(splitShellCommands(script)).toEqual(expected);
      }),
    );
  });

  it("never throws on arbitrary text", () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => void splitShellCommands(s)));
  });
});
