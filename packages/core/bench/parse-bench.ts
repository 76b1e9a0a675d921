// Parser benchmark: a generated 10,000-instruction Dockerfile (all argument forms, continuations,
// comments, heredocs), parsed several times; prints the median.
// Run: npx tsx packages/core/bench/parse-bench.ts [instructions] [runs]

import { parseDockerfile } from "../src/dockerfile/parser.js";

const instructions = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 9);

const templates: Array<(i: number) => string> = [
  (i) => `FROM registry.example.com/base/image:${i} AS stage${i}`,
  (i) => `# step ${i}\nRUN apt-get update && \\\n    apt-get install -y pkg${i} \\\n    && rm -rf /var/lib/apt/lists/*`,
  (i) => `COPY --from=stage${i} --chown=app:app --chmod=644 src/${i}/ /app/${i}/`,
  (i) => `ENV KEY_${i}=value${i} OTHER_${i}="quoted value ${i}" PATH=/opt/${i}/bin:$PATH`,
  (i) => `LABEL org.example.step${i}="step ${i}" version=${i}`,
  (i) => `CMD ["/usr/bin/app", "--id", "${i}", "--verbose"]`,
  (i) => `RUN <<EOF${i}\necho heredoc ${i}\nexit 0\nEOF${i}`,
  (i) => `ARG BUILD_${i}=default${i}`,
  (i) => `HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:${8000 + (i % 1000)}/ || exit 1`,
  (i) => `WORKDIR /srv/app/${i}`,
];

function generate(count: number): string {
  const lines = ["# syntax=docker/dockerfile:1", ""];
  for (let i = 0; i < count; i++) lines.push((templates[i % templates.length] as (i: number) => string)(i));
  return lines.join("\n") + "\n";
}

const source = generate(instructions);
const times: number[] = [];
let nodes = 0;
for (let r = 0; r < runs; r++) {
  const start = process.hrtime.bigint();
  nodes = parseDockerfile(source).nodes.length;
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)] ?? Number.NaN;
console.log(
  `parse-bench: ${nodes} instructions, ${(source.length / 1024).toFixed(0)} KiB, ${runs} runs: ` +
    `median ${median.toFixed(1)} ms (min ${(times[0] ?? 0).toFixed(1)}, max ${(times[times.length - 1] ?? 0).toFixed(1)})`,
);
